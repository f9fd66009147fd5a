// Normalizers of HF tokenizer.json ("normalizer" field): Sequence, NFC, NFD, NFKC, NFKD,
// Lowercase, Prepend, Replace, Strip, ByteLevel. They rewrite one text segment (the text between
// added tokens). Offsets are not tracked: shardlm only needs ids. Not supported: Precompiled,
// BertNormalizer, StripAccents, Nmt (they give Error(kUnsupported)).
#pragma once

#include <memory>
#include <string>

#include "runtime/text/json_util.h"

namespace shardlm::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};

// Builds the normalizer described by `j` (a null json gives nullptr). `path` names the field in
// errors, e.g. "tokenizer.json: normalizer".
std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& path);

// Rust char::is_whitespace (Unicode White_Space).
bool is_unicode_space(uint32_t cp);

// Literal replace-all of non-overlapping occurrences, left to right.
std::string replace_all(const std::string& s, const std::string& from, const std::string& to);

}  // namespace shardlm::text
