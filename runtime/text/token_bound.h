// A lower bound on how many tokens a text encodes to, from its length alone: the most input bytes
// one token can stand for, derived from a tokenizer's stages. It lets a caller refuse a prompt far
// beyond the context (a 100 MB string) at once instead of tokenizing all of it.
// Not an estimate: the bound is exact or absent. Stages that can drop arbitrary amounts of text
// (Strip, StripAccents, Replace with "", a Split that removes its matches, whitespace-splitting
// pre-tokenizers, added tokens that absorb surrounding spaces, fused or dropped unknown
// characters) make it
// absent (0).
#pragma once

#include <cstddef>
#include <vector>

#include "runtime/text/added_vocab.h"
#include "runtime/text/json_util.h"

namespace shardlm::text {

// normalizer / pre_tokenizer: the tokenizer.json objects (null for none). longest_token_bytes:
// BpeModel::longest_token_bytes(); loses_unknown: unknown characters can fuse into one token or
// vanish (BpeModel::fuses_unknown() or may_drop_unknown()). Returns the most
// input bytes a single token can cover, or 0 when no such bound holds.
// True when the pre-tokenizer (or one in its Sequence) is ByteLevel: all input becomes
// byte-level characters.
bool has_byte_level(const Json& pre_tokenizer);

size_t max_input_bytes_per_token(const Json& normalizer, const Json& pre_tokenizer,
                                 size_t longest_token_bytes, bool loses_unknown,
                                 const std::vector<AddedToken>& added);

}  // namespace shardlm::text
