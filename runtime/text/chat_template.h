// shardlm::text::ChatTemplate: renders a Hugging Face chat template (the Jinja source from
// tokenizer_config.json or chat_template.jinja) the way transformers.apply_chat_template does,
// in a sandboxed renderer for the Jinja subset chat templates use (jinja/parser.h lists it):
// no file system, no mutation of inputs, bounded loops, call depth and output size.
// Not here: tokenizing the result (Tokenizer::encode), tool-call parsing of model output.
//
// Errors: Error(kFormat, "chat template line N: ...") for a template that does not parse
// (thrown by the constructor); Error(kInvalidArg, "chat template line N: ...") for render-time
// failures, including raise_exception() calls (e.g. "roles must alternate").
// Thread-safety: render() is const and may run concurrently on one ChatTemplate.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace shardlm::text {

struct ChatTemplateLimits {
  size_t max_output_bytes = 16u << 20;
  size_t max_loop_iterations = 1000000;
  int max_call_depth = 64;
};

class ChatTemplate {
 public:
  explicit ChatTemplate(const std::string& source, ChatTemplateLimits limits = {});
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // messages: array of {"role", "content", ...} objects (any extra keys pass through, e.g.
  // "tool_calls", "reasoning_content"). extra: more template variables, e.g.
  // {"enable_thinking": false} or {"tools": [...]}; "tools" and "documents" default to none as in
  // transformers. bos_token/eos_token are the strings of the tokenizer's special tokens.
  // ordered_json keeps key order (it matters for tojson); plain json sorts keys.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object(),
                     const std::string& bos_token = "", const std::string& eos_token = "") const;
  std::string render(const nlohmann::json& messages, bool add_generation_prompt,
                     const nlohmann::json& extra, const std::string& bos_token = "",
                     const std::string& eos_token = "") const;

  const std::string& source() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The chat template in tokenizer_config.json contents: "chat_template" may be a string or a list
// of {"name", "template"}; `name` picks one from a list ("" = "default", else the first one).
// Returns "" when the config has no chat_template. Error(kFormat) when it is malformed,
// Error(kInvalidArg) when `name` is not in the list.
std::string select_chat_template(const std::string& tokenizer_config_json,
                                 const std::string& name = "");

}  // namespace shardlm::text
