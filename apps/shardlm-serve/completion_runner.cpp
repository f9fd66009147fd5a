// CompletionRunner: prompts, submission of the choices, and the read loop over their streams.
#include "apps/shardlm-serve/completion_runner.h"

#include <chrono>
#include <memory>
#include <random>

#include "apps/shardlm-serve/api_error.h"
#include "runtime/core/status.h"
#include "runtime/engine/stop_strings.h"
#include "runtime/text/stream_decoder.h"

namespace shardlm::serve {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// at_least: n_prompt is a lower bound from the text's length (Tokenizer::min_tokens).
[[noreturn]] void too_long(int64_t n_ctx, int64_t n_prompt, int64_t max_tokens, const char* where,
                           bool at_least = false) {
  const std::string over = at_least ? "at least " : "";
  if (max_tokens > 0) {
    bad_request("This model's maximum context length is " + std::to_string(n_ctx) +
                    " tokens. However, you requested " + over + std::to_string(n_prompt + max_tokens) +
                    " tokens (" + over + std::to_string(n_prompt) + " in the " + where + ", " +
                    std::to_string(max_tokens) + " in the completion). Please reduce the length " +
                    "of the " + where + " or completion.",
                where);
  }
  bad_request("This model's maximum context length is " + std::to_string(n_ctx) +
                  " tokens. However, your " + where + " resulted in " + over + std::to_string(n_prompt) +
                  " tokens, which leaves no room for the completion. Please reduce the length " +
                  "of the " + where + ".",
              where);
}

struct Choice {
  std::shared_ptr<RequestStream> stream;
  text::StreamDecoder decoder;
  StopStringFilter filter;
  ChoiceResult result;
  std::vector<TokenLogprob> pending_logprobs;  // tokens not sent in a delta yet
  std::string pending_text;                    // released text not sent in a delta yet
  int64_t pending_tokens = 0;                  // tokens since the last delta
  bool done = false;
  bool any_token = false;
  Clock::time_point last_token;

  Choice(const text::Tokenizer& tok, std::vector<std::string> stop)
      : decoder(tok, /*skip_special_tokens=*/true), filter(std::move(stop)) {}
};

const char* finish_name(FinishReason f) {
  switch (f) {
    case FinishReason::kMaxTokens:
    case FinishReason::kContextFull:
      return "length";
    default:
      return "stop";
  }
}

}  // namespace

std::vector<std::vector<int32_t>> CompletionRunner::prompts(const CompletionRequest& r) const {
  if (!text_.has_tokenizer()) {
    throw ApiError(400, "this model's pack carries no tokenizer, so it takes no text requests",
                   "invalid_request_error");
  }
  const text::Tokenizer& tok = text_.tokenizer();
  const int64_t n_ctx = loop_.n_ctx();
  std::vector<std::vector<int32_t>> out;
  const char* where = r.endpoint == Endpoint::kChat ? "messages" : "prompt";
  // A text far beyond the context is refused from its length, before tokenizing all of it.
  const auto check_length = [&](int64_t at_least) {
    if (at_least > 0 && at_least + std::max<int64_t>(r.max_tokens, 1) > n_ctx)
      too_long(n_ctx, at_least, r.max_tokens, where, /*at_least=*/true);
  };
  if (r.endpoint == Endpoint::kChat) {
    if (!text_.has_chat_template()) {
      throw ApiError(400, "this model's pack carries no chat template; use /v1/completions instead",
                     "invalid_request_error", "messages");
    }
    const std::string rendered = text_.render(r.messages, true, r.template_kwargs);
    check_length(tok.min_tokens(rendered));
    out.push_back(tok.encode(rendered, /*add_special_tokens=*/false));
  } else {
    for (const PromptInput& p : r.prompts) {
      if (!p.is_ids) check_length(tok.min_tokens(p.text));
      out.push_back(p.is_ids ? p.ids : tok.encode(p.text, /*add_special_tokens=*/true));
    }
  }
  for (const auto& ids : out) {
    if (ids.empty()) bad_request(std::string("the ") + where + " gave no tokens", where);
    const int64_t n = static_cast<int64_t>(ids.size());
    if (n + std::max<int64_t>(r.max_tokens, 1) > n_ctx) too_long(n_ctx, n, r.max_tokens, where);
  }
  return out;
}

std::string CompletionRunner::token_text(int32_t id) const {
  return text_.tokenizer().decode({id}, /*skip_special_tokens=*/false);
}

RunResult CompletionRunner::run(const CompletionRequest& r,
                                const std::vector<std::vector<int32_t>>& prompts,
                                const std::function<bool(const ChoiceDelta&)>& on_delta,
                                const std::function<bool()>& cancelled) {
  RunResult out;
  const Clock::time_point start = Clock::now();
  std::vector<std::unique_ptr<Choice>> choices;
  std::random_device entropy;
  for (size_t p = 0; p < prompts.size(); ++p) {
    out.prompt_tokens += static_cast<int64_t>(prompts[p].size());
    for (int j = 0; j < r.n; ++j) {
      const int index = static_cast<int>(p) * r.n + j;
      TokenRequest tr;
      tr.prompt = prompts[p];
      tr.sampling = r.sampling;
      // A seeded request is reproducible; its choices still differ from each other.
      tr.sampling.seed = r.seeded ? r.sampling.seed + static_cast<uint64_t>(index)
                                  : (uint64_t{entropy()} << 32) ^ entropy();
      tr.max_new_tokens = r.max_tokens;
      if (!r.ignore_eos) tr.stop_ids = text_.stop_ids();
      tr.top_logprobs = r.logprobs ? r.top_logprobs : -1;
      auto c = std::make_unique<Choice>(text_.tokenizer(), r.stop);
      try {
        c->stream = loop_.submit(std::move(tr));
      } catch (const Error& e) {
        for (auto& earlier : choices) earlier->stream->cancel();
        if (e.code() == StatusCode::kInvalidArg || e.code() == StatusCode::kKvFull) {
          bad_request(e.what(), r.endpoint == Endpoint::kChat ? "messages" : "prompt");
        }
        throw;
      }
      choices.push_back(std::move(c));
    }
  }

  // Sends what the choice holds back, plus `text`, as one delta.
  auto emit = [&](int index, Choice& c, std::string text, const std::string& finish) {
    ChoiceDelta d;
    d.index = index;
    d.text = std::move(c.pending_text) + text;
    d.finish_reason = finish;
    d.logprobs = std::move(c.pending_logprobs);
    c.pending_text.clear();
    c.pending_logprobs.clear();
    c.pending_tokens = 0;
    c.result.text += d.text;
    c.result.logprobs.insert(c.result.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
    if (!finish.empty()) {
      c.result.finish_reason = finish;
      c.done = true;
    }
    if (!on_delta(d)) out.client_gone = true;
  };
  auto on_token = [&](int index, Choice& c, int32_t token) {
    const Clock::time_point now = Clock::now();
    if (out.ttft_seconds < 0) out.ttft_seconds = since(start);
    if (c.any_token) {
      out.inter_token_seconds.push_back(std::chrono::duration<double>(now - c.last_token).count());
    }
    c.any_token = true;
    c.last_token = now;
    ++c.result.n_tokens;
    ++out.completion_tokens;
    TokenLogprob lp;
    if (r.logprobs && c.stream->take_logprob(&lp)) c.pending_logprobs.push_back(std::move(lp));
    ++c.pending_tokens;
    std::string released = c.filter.put(c.decoder.put(token));
    if (c.filter.stopped()) {
      c.stream->cancel();  // the driver may have run a token past it: discarded
      emit(index, c, std::move(released), "stop");
    } else {
      c.pending_text += released;  // sent once the ready tokens are drained (flush below)
    }
  };
  // A delta for what choice i holds back, once it has stream_interval_ tokens (or more ready).
  auto flush = [&](int index, Choice& c) {
    if (!c.done && !c.pending_text.empty() && c.pending_tokens >= stream_interval_) {
      emit(index, c, "", "");
    }
  };
  auto on_end = [&](int index, Choice& c) {
    const TokenResult& tr = c.stream->result();
    std::string tail = c.filter.put(c.decoder.flush());
    std::string finish = finish_name(tr.finish);
    if (c.filter.stopped()) {
      finish = "stop";
    } else {
      tail += c.filter.flush();
    }
    emit(index, c, std::move(tail), finish);
  };
  // One event of choice i: a token, the end, or nothing within `wait`.
  auto poll = [&](int i, std::chrono::milliseconds wait) {
    Choice& c = *choices[static_cast<size_t>(i)];
    int32_t token = -1;
    const RequestStream::Event ev = c.stream->next_for(&token, wait);
    if (ev == RequestStream::Event::kToken) {
      on_token(i, c, token);
    } else if (ev == RequestStream::Event::kEnd) {
      on_end(i, c);
    }
    return ev != RequestStream::Event::kTimeout;
  };

  const int n_choices = static_cast<int>(choices.size());
  for (;;) {
    int active = 0, first_active = -1;
    bool progressed = false;
    for (int i = 0; i < n_choices && !out.client_gone; ++i) {
      if (choices[static_cast<size_t>(i)]->done) continue;
      // Every token already queued goes into one delta: a client that fell behind catches up
      // with one write instead of one per token.
      while (!choices[static_cast<size_t>(i)]->done && !out.client_gone &&
             poll(i, std::chrono::milliseconds(0))) {
        progressed = true;
      }
      if (!out.client_gone) flush(i, *choices[static_cast<size_t>(i)]);
      if (!choices[static_cast<size_t>(i)]->done) {
        ++active;
        if (first_active < 0) first_active = i;
      }
    }
    if (!out.client_gone && active > 0 && !progressed && cancelled()) out.client_gone = true;
    if (out.client_gone) {
      for (auto& c : choices) {
        if (!c->done) c->stream->cancel();
      }
      break;
    }
    if (active == 0) break;
    // Nothing ready: wait on one choice (briefly when others may be ready first).
    if (!progressed) poll(first_active, std::chrono::milliseconds(active == 1 ? 50 : 2));
  }
  for (auto& c : choices) out.choices.push_back(std::move(c->result));
  return out;
}

}  // namespace shardlm::serve
