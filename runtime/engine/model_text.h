// What a pack carries for text generation, loaded once per model: the tokenizer
// (tokenizer.json + tokenizer_config.json), the chat template (chat_template.jinja, else
// tokenizer_config.json's), the generation defaults (generation_config.json with transformers'
// meaning: do_sample false or absent = greedy; top_k 50 when sampling and unset) and the stop ids
// (config/generation_config eos ids, the tokenizer's eos token, and the template's end-of-turn
// token found by rendering a probe conversation). Pieces a pack lacks are absent, not errors;
// using an absent one throws Error(kUnsupported) naming the pack file.
// Not here: the conversation state (session.h) or the generation loop (generation.h).
// Thread-safety: immutable after load(); every const method may run on several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "formats/pack_reader.h"
#include "runtime/engine/sampler.h"
#include "runtime/text/chat_template.h"
#include "runtime/text/tokenizer.h"

namespace shardlm {

class ModelText {
 public:
  // Throws Error(kFormat) naming the pack file and carried file when one is malformed.
  static std::shared_ptr<const ModelText> load(const PackReader& pack);

  bool has_tokenizer() const { return tokenizer_.has_value(); }
  bool has_chat_template() const { return chat_template_ != nullptr; }
  const text::Tokenizer& tokenizer() const;         // Error(kUnsupported) when absent
  const text::ChatTemplate& chat_template() const;  // Error(kUnsupported) when absent

  // The template applied as transformers.apply_chat_template(tokenize=False) does, with the
  // tokenizer's bos/eos strings.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra) const;

  // Sampling defaults from generation_config.json (see the file comment).
  const SamplerParams& defaults() const { return defaults_; }
  bool has_generation_config() const { return has_generation_config_; }
  // Every id that ends a reply, ascending, without duplicates.
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  // The template's end-of-turn token (e.g. <|im_end|>, <|eot_id|>), or -1 when not found.
  int32_t end_of_turn_id() const { return end_of_turn_id_; }
  // True when the template source mentions enable_thinking (Qwen3-style thinking switch).
  bool template_has_thinking_switch() const { return thinking_switch_; }

 private:
  ModelText() = default;
  std::string pack_path_;
  std::optional<text::Tokenizer> tokenizer_;
  std::unique_ptr<text::ChatTemplate> chat_template_;
  SamplerParams defaults_;
  bool has_generation_config_ = false;
  std::vector<int32_t> stop_ids_;
  int32_t end_of_turn_id_ = -1;
  bool thinking_switch_ = false;
};

// Sampling defaults from generation_config.json contents, as transformers reads them.
// `where` names the file in Error(kFormat) messages.
SamplerParams generation_defaults_from_json(const std::string& generation_config_json,
                                            const std::string& where);

}  // namespace shardlm
