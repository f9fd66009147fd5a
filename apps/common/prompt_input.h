// Where shardlm-run's and shardlm-bench's prompt ids come from and how generated ids are shown: --prompt-ids
// parsing, and text through the tokenizer carried in the pack (runtime/text) when this build
// has it (SHARDLM_APP_HAS_TEXT); without it the text functions fail with kUnsupported.
// Raw text only: chat templates are shardlm-chat's job.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/pack_reader.h"

namespace shardlm {

// "1, 2,3" -> {1, 2, 3}. Throws Error(kInvalidArg) naming the bad item.
std::vector<int32_t> parse_id_list(const std::string& text);

// Text -> ids with the tokenizer carried in `pack` (runtime/text). `add_special_tokens` applies
// the tokenizer's post-processor (BOS, ...), as a prompt for generation wants.
std::vector<int32_t> encode_prompt(const PackReader& pack, const std::string& text,
                                   bool add_special_tokens = true);
// Ids -> text with the same tokenizer.
std::string decode_tokens(const PackReader& pack, const std::vector<int32_t>& ids);
// True when this build can turn text into ids.
bool text_supported();

}  // namespace shardlm
