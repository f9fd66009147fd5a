// ChatTemplate (see chat_template.h): parses once, renders with a fresh sandboxed interpreter
// per call, with the variables transformers passes (messages, tools=None, documents=None,
// add_generation_prompt, bos_token, eos_token, then the caller's extra kwargs).
#include "runtime/text/chat_template.h"

#include "runtime/core/status.h"
#include "runtime/text/jinja/interpreter.h"
#include "runtime/text/jinja/parser.h"

namespace shardlm::text {

struct ChatTemplate::Impl {
  std::string source;
  std::vector<jinja::NodePtr> body;
  ChatTemplateLimits limits;
};

ChatTemplate::ChatTemplate(const std::string& source, ChatTemplateLimits limits)
    : impl_(std::make_unique<Impl>()) {
  impl_->source = source;
  impl_->limits = limits;
  impl_->body = jinja::parse_template(source);
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

const std::string& ChatTemplate::source() const {
  return impl_->source;
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra, const std::string& bos_token,
                                 const std::string& eos_token) const {
  if (!messages.is_array()) fail(StatusCode::kInvalidArg, "chat messages must be a JSON array");
  if (!extra.is_null() && !extra.is_object())
    fail(StatusCode::kInvalidArg, "chat template extra variables must be a JSON object");
  jinja::Limits lim;
  lim.max_output_bytes = impl_->limits.max_output_bytes;
  lim.max_loop_iterations = impl_->limits.max_loop_iterations;
  lim.max_call_depth = impl_->limits.max_call_depth;
  auto globals = std::make_shared<jinja::Frame>();
  jinja::Interpreter interp(lim, globals);
  jinja::add_builtin_globals(*globals, &interp);
  globals->vars["messages"] = jinja::from_json(messages);
  globals->vars["tools"] = jinja::Value::none();
  globals->vars["documents"] = jinja::Value::none();
  globals->vars["add_generation_prompt"] = jinja::Value::boolean(add_generation_prompt);
  globals->vars["bos_token"] = jinja::Value::string(bos_token);
  globals->vars["eos_token"] = jinja::Value::string(eos_token);
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it)
      globals->vars[it.key()] = jinja::from_json(it.value());
  return interp.render(impl_->body);
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const nlohmann::json& extra, const std::string& bos_token,
                                 const std::string& eos_token) const {
  return render(nlohmann::ordered_json::parse(messages.dump()), add_generation_prompt,
                extra.is_null() ? nlohmann::ordered_json::object()
                                : nlohmann::ordered_json::parse(extra.dump()),
                bos_token, eos_token);
}

std::string select_chat_template(const std::string& tokenizer_config_json,
                                 const std::string& name) {
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(tokenizer_config_json);
  } catch (const std::exception& e) {
    fail(StatusCode::kFormat, std::string("tokenizer_config.json: not valid JSON: ") + e.what());
  }
  if (!cfg.is_object()) fail(StatusCode::kFormat, "tokenizer_config.json: expected an object");
  auto it = cfg.find("chat_template");
  if (it == cfg.end() || it->is_null()) return "";
  if (it->is_string()) {
    if (!name.empty() && name != "default")
      fail(StatusCode::kInvalidArg,
           "tokenizer_config.json: chat_template has no template named '" + name + "'");
    return it->get<std::string>();
  }
  if (!it->is_array())
    fail(StatusCode::kFormat, "tokenizer_config.json: chat_template: expected a string or a list");
  const std::string want = name.empty() ? "default" : name;
  std::string first;
  for (size_t k = 0; k < it->size(); ++k) {
    const auto& e = (*it)[k];
    if (!e.is_object() || !e.contains("name") || !e.contains("template") ||
        !e["name"].is_string() || !e["template"].is_string())
      fail(StatusCode::kFormat, "tokenizer_config.json: chat_template[" + std::to_string(k) +
                                    "]: expected {\"name\": ..., \"template\": ...}");
    if (e["name"] == want) return e["template"].get<std::string>();
    if (first.empty()) first = e["template"].get<std::string>();
  }
  if (name.empty()) return first;
  fail(StatusCode::kInvalidArg,
       "tokenizer_config.json: chat_template has no template named '" + name + "'");
}

}  // namespace shardlm::text
