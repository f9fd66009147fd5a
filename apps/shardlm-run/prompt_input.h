// Where shardlm-run's prompt ids come from and how generated ids are shown. Today: --prompt-ids
// parsing and id printing. The seam for text: --prompt TEXT needs the tokenizer of the "Text"
// issue (runtime/text); until it lands, encode_prompt/decode_tokens say so with kUnsupported.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/pack_reader.h"

namespace shardlm {

// "1, 2,3" -> {1, 2, 3}. Throws Error(kInvalidArg) naming the bad item.
std::vector<int32_t> parse_id_list(const std::string& text);

// Text -> ids with the tokenizer carried in `pack` (runtime/text).
std::vector<int32_t> encode_prompt(const PackReader& pack, const std::string& text);
// Ids -> text with the same tokenizer.
std::string decode_tokens(const PackReader& pack, const std::vector<int32_t>& ids);
// True when this build can turn text into ids.
bool text_supported();

}  // namespace shardlm
