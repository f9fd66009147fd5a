// ModelText: tokenizer, chat template, generation defaults and stop ids from a pack.
#include "runtime/engine/model_text.h"

#include <algorithm>

#include "runtime/core/status.h"

namespace shardlm {

namespace {

using nlohmann::json;

float get_float(const json& j, const char* key, float fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) {
    fail(StatusCode::kFormat, where + ": field '" + key + "' must be a number");
  }
  return j[key].get<float>();
}

// The special token the template writes right after an assistant message's content.
int32_t probe_end_of_turn(const ModelText& t) {
  const std::string marker = "SHARDLMPROBEREPLY";
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  msgs.push_back({{"role", "user"}, {"content", "hello"}});
  msgs.push_back({{"role", "assistant"}, {"content", marker}});
  std::string rendered;
  try {
    rendered = t.render(msgs, false, nlohmann::ordered_json::object());
  } catch (const Error&) {
    return -1;  // a template that needs another conversation shape: no probe
  }
  const size_t at = rendered.rfind(marker);
  if (at == std::string::npos) return -1;
  const std::vector<int32_t> after = t.tokenizer().encode(rendered.substr(at + marker.size()));
  for (int32_t id : after) {
    if (t.tokenizer().is_special(id)) return id;
    // Only whitespace may come between the content and the end-of-turn token.
    const std::string piece = t.tokenizer().decode({id});
    if (piece.find_first_not_of(" \t\r\n") != std::string::npos) return -1;
  }
  return -1;
}

}  // namespace

SamplerParams generation_defaults_from_json(const std::string& text, const std::string& where) {
  SamplerParams p;  // transformers' GenerationConfig defaults: greedy
  p.temperature = 0.0f;
  if (text.empty()) return p;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(StatusCode::kFormat, where + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) fail(StatusCode::kFormat, where + ": must be a JSON object");
  bool do_sample = false;
  if (j.contains("do_sample") && !j["do_sample"].is_null()) {
    if (!j["do_sample"].is_boolean())
      fail(StatusCode::kFormat, where + ": field 'do_sample' must be true or false");
    do_sample = j["do_sample"].get<bool>();
  }
  p.repetition_penalty = get_float(j, "repetition_penalty", 1.0f, where);
  if (do_sample) {
    p.temperature = get_float(j, "temperature", 1.0f, where);
    p.top_k = static_cast<int32_t>(get_float(j, "top_k", 50.0f, where));
    p.top_p = get_float(j, "top_p", 1.0f, where);
    p.min_p = get_float(j, "min_p", 0.0f, where);
  }
  try {
    validate_sampler_params(p);
  } catch (const Error& e) {
    fail(StatusCode::kFormat, where + ": " + e.what());
  }
  return p;
}

std::shared_ptr<const ModelText> ModelText::load(const PackReader& pack) {
  std::shared_ptr<ModelText> t(new ModelText());
  t->pack_path_ = pack.path();
  const std::string where = pack.path() + ": ";
  const std::string tok_config =
      pack.has_file("tokenizer_config.json") ? pack.file("tokenizer_config.json") : "";
  // Errors from runtime/text name the field; prefix them with the pack file.
  auto in_pack = [&](const char* what, const auto& fn) {
    try {
      fn();
    } catch (const Error& e) {
      fail(e.code(), where + what + ": " + e.what());
    }
  };
  if (pack.has_file("tokenizer.json")) {
    in_pack("tokenizer.json", [&] {
      t->tokenizer_ = text::Tokenizer::from_json(pack.file("tokenizer.json"), tok_config);
    });
  }
  std::string source;
  if (pack.has_file("chat_template.jinja")) {
    source = pack.file("chat_template.jinja");
  } else if (!tok_config.empty()) {
    in_pack("tokenizer_config.json", [&] { source = text::select_chat_template(tok_config); });
  }
  if (!source.empty()) {
    in_pack("chat template",
            [&] { t->chat_template_ = std::make_unique<text::ChatTemplate>(source); });
    t->thinking_switch_ = source.find("enable_thinking") != std::string::npos;
  }
  if (pack.has_file("generation_config.json")) {
    t->has_generation_config_ = true;
    t->defaults_ = generation_defaults_from_json(pack.file("generation_config.json"),
                                                 where + "generation_config.json");
  } else {
    t->defaults_ = generation_defaults_from_json("", where);
  }

  std::vector<int32_t> stops;
  for (int64_t id : pack.config().eos_token_ids) stops.push_back(static_cast<int32_t>(id));
  if (t->tokenizer_ && t->tokenizer_->eos_id() >= 0) stops.push_back(t->tokenizer_->eos_id());
  if (t->tokenizer_ && t->chat_template_) {
    t->end_of_turn_id_ = probe_end_of_turn(*t);
    if (t->end_of_turn_id_ >= 0) stops.push_back(t->end_of_turn_id_);
  }
  std::sort(stops.begin(), stops.end());
  stops.erase(std::unique(stops.begin(), stops.end()), stops.end());
  t->stop_ids_ = std::move(stops);
  return t;
}

const text::Tokenizer& ModelText::tokenizer() const {
  if (!tokenizer_) {
    fail(StatusCode::kUnsupported,
         pack_path_ + " carries no tokenizer.json: text in or out is not possible (use token ids)");
  }
  return *tokenizer_;
}

const text::ChatTemplate& ModelText::chat_template() const {
  if (!chat_template_) {
    fail(StatusCode::kUnsupported, pack_path_ +
                                       " carries no chat template (chat_template.jinja or "
                                       "tokenizer_config.json's chat_template)");
  }
  return *chat_template_;
}

std::string ModelText::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                              const nlohmann::ordered_json& extra) const {
  const text::ChatTemplate& tpl = chat_template();
  const std::string bos = tokenizer_ ? tokenizer_->bos_token() : std::string();
  const std::string eos = tokenizer_ ? tokenizer_->eos_token() : std::string();
  return tpl.render(messages, add_generation_prompt, extra, bos, eos);
}

}  // namespace shardlm
