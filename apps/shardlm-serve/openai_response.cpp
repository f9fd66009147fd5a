// OpenAI response shapes (see openai_response.h).
#include "apps/shardlm-serve/openai_response.h"

namespace shardlm::serve {

namespace {

Json bytes_of(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

Json chat_logprobs(const ResponseContext& ctx, const std::vector<TokenLogprob>& lps) {
  Json content = Json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string t = ctx.token_text(lp.token);
    Json top = Json::array();
    for (const auto& [id, l] : lp.top) {
      const std::string a = ctx.token_text(id);
      top.push_back({{"token", a}, {"logprob", l}, {"bytes", bytes_of(a)}});
    }
    content.push_back(
        {{"token", t}, {"logprob", lp.logprob}, {"bytes", bytes_of(t)}, {"top_logprobs", top}});
  }
  return Json{{"content", content}};
}

// Legacy completions form; text_offset counts from `offset` (the choice's text so far).
Json completion_logprobs(const ResponseContext& ctx, const std::vector<TokenLogprob>& lps,
                         size_t offset) {
  Json tokens = Json::array(), token_lps = Json::array(), tops = Json::array(),
       offsets = Json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string t = ctx.token_text(lp.token);
    tokens.push_back(t);
    token_lps.push_back(lp.logprob);
    Json top = Json::object();
    for (const auto& [id, l] : lp.top) top[ctx.token_text(id)] = l;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += t.size();
  }
  return Json{{"tokens", tokens},
              {"token_logprobs", token_lps},
              {"top_logprobs", tops},
              {"text_offset", offsets}};
}

const char* object_name(const ResponseContext& ctx, bool chunk) {
  if (ctx.endpoint == Endpoint::kChat) return chunk ? "chat.completion.chunk" : "chat.completion";
  return "text_completion";
}

Json head(const ResponseContext& ctx, bool chunk) {
  return Json{{"id", ctx.id},
              {"object", object_name(ctx, chunk)},
              {"created", ctx.created},
              {"model", ctx.model}};
}

}  // namespace

std::string to_text(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Json error_body(const ApiError& e) {
  return Json{{"error",
               {{"message", e.what()},
                {"type", e.type()},
                {"param", e.param().empty() ? Json(nullptr) : Json(e.param())},
                {"code", e.code().empty() ? Json(nullptr) : Json(e.code())}}}};
}

Json usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return Json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens}};
}

Json full_response(const ResponseContext& ctx, const RunResult& run) {
  Json j = head(ctx, false);
  Json choices = Json::array();
  for (size_t i = 0; i < run.choices.size(); ++i) {
    const ChoiceResult& c = run.choices[i];
    Json choice{{"index", i}};
    Json lps = nullptr;
    if (ctx.endpoint == Endpoint::kChat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      if (ctx.logprobs) lps = chat_logprobs(ctx, c.logprobs);
    } else {
      choice["text"] = c.text;
      if (ctx.logprobs) lps = completion_logprobs(ctx, c.logprobs, 0);
    }
    choice["logprobs"] = lps;
    choice["finish_reason"] = c.finish_reason;
    choices.push_back(std::move(choice));
  }
  j["choices"] = std::move(choices);
  j["usage"] = usage(run.prompt_tokens, run.completion_tokens);
  return j;
}

Json delta_chunk(const ResponseContext& ctx, const ChoiceDelta& d, bool first) {
  Json j = head(ctx, true);
  Json choice{{"index", d.index}};
  Json lps = nullptr;
  if (ctx.endpoint == Endpoint::kChat) {
    Json delta = Json::object();
    if (first) delta["role"] = "assistant";
    if (!d.text.empty() || d.finish_reason.empty()) delta["content"] = d.text;
    choice["delta"] = std::move(delta);
    if (ctx.logprobs && !d.logprobs.empty()) lps = chat_logprobs(ctx, d.logprobs);
  } else {
    choice["text"] = d.text;
    if (ctx.logprobs && !d.logprobs.empty()) lps = completion_logprobs(ctx, d.logprobs, 0);
  }
  choice["logprobs"] = lps;
  choice["finish_reason"] = d.finish_reason.empty() ? Json(nullptr) : Json(d.finish_reason);
  j["choices"] = Json::array({choice});
  return j;
}

Json usage_chunk(const ResponseContext& ctx, int64_t prompt_tokens, int64_t completion_tokens) {
  Json j = head(ctx, true);
  j["choices"] = Json::array();
  j["usage"] = usage(prompt_tokens, completion_tokens);
  return j;
}

Json model_list(const std::string& model, int64_t created, int64_t max_model_len) {
  return Json{{"object", "list"},
              {"data", Json::array({Json{{"id", model},
                                         {"object", "model"},
                                         {"created", created},
                                         {"owned_by", "shardlm"},
                                         {"max_model_len", max_model_len}}})}};
}

}  // namespace shardlm::serve
