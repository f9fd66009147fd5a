// Decoders of HF tokenizer.json ("decoder"): Sequence, ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip, BPEDecoder, WordPiece. They turn the token strings of an id sequence
// back into text. Byte-level output is repaired to well-formed UTF-8 as
// String::from_utf8_lossy does.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/text/json_util.h"

namespace shardlm::text {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& path);

// The byte a byte-fallback token stands for: "<0xAB>" -> 0xAB; -1 for any other string.
int parse_byte_token(const std::string& token);

}  // namespace shardlm::text
