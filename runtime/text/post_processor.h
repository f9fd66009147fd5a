// Post-processors of HF tokenizer.json ("post_processor"): TemplateProcessing, BertProcessing,
// RobertaProcessing, ByteLevel (no change to ids) and Sequence, for single sequences only
// (shardlm never encodes pairs). They add BOS/EOS-like ids when add_special_tokens is true.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/text/json_util.h"

namespace shardlm::text {

class PostProcessor {
 public:
  // Build from JSON; null JSON gives the identity.
  static PostProcessor from_json(const Json& j, const std::string& path);
  // bos? $A eos? as transformers' LlamaTokenizerFast.update_post_processor writes it.
  static PostProcessor bos_eos(int32_t bos, int32_t eos);

  std::vector<int32_t> apply(const std::vector<int32_t>& ids) const;
  const std::vector<int32_t>& prefix() const { return prefix_; }
  const std::vector<int32_t>& suffix() const { return suffix_; }

 private:
  std::vector<int32_t> prefix_, suffix_;  // ids before and after the sequence
};

}  // namespace shardlm::text
