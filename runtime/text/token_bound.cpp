// max_input_bytes_per_token (token_bound.h): how far each stage can shrink the input, times the
// longest thing one token can be.
#include "runtime/text/token_bound.h"

#include <algorithm>
#include <string>

namespace shardlm::text {
namespace {

std::string type_of(const Json& j) {
  if (!j.is_object()) return "";
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// The most the normalizer can shrink the input, as a factor on byte length; 0: without bound.
// Unicode normalization and case folding shrink by at most 3x (a Hangul syllable composed from
// three 3-byte jamo; KELVIN SIGN, 3 bytes, to "k"); 4 leaves room.
double normalizer_shrink(const Json& j) {
  if (j.is_null()) return 1;
  const std::string t = type_of(j);
  if (t == "NFC" || t == "NFD" || t == "NFKC" || t == "NFKD" || t == "Lowercase") return 4;
  if (t == "Prepend") return 1;
  if (t == "Replace") {
    const Json& pattern = j.contains("pattern") ? j["pattern"] : Json();
    const Json& content = j.contains("content") ? j["content"] : Json();
    if (!pattern.is_object() || !pattern.contains("String") || !pattern["String"].is_string() ||
        !content.is_string() || content.get<std::string>().empty())
      return 0;  // a regex, or a replacement by nothing, can remove any amount of text
    const double from = static_cast<double>(pattern["String"].get<std::string>().size());
    return std::max(1.0, from / static_cast<double>(content.get<std::string>().size()));
  }
  if (t == "Sequence" && j.contains("normalizers") && j["normalizers"].is_array()) {
    double f = 1;
    for (const Json& n : j["normalizers"]) {
      const double g = normalizer_shrink(n);
      if (g == 0) return 0;
      f *= g;
    }
    return f;
  }
  return 0;  // Strip, StripAccents, BertNormalizer, Precompiled, anything unknown
}

// False when the pre-tokenizer can drop text.
bool pre_tokenizer_keeps_text(const Json& j) {
  if (j.is_null()) return true;
  const std::string t = type_of(j);
  if (t == "ByteLevel" || t == "Metaspace" || t == "Digits" || t == "Punctuation") return true;
  if (t == "Split") return !j.contains("behavior") || j["behavior"] != "Removed";
  if (t == "Sequence" && j.contains("pretokenizers") && j["pretokenizers"].is_array()) {
    for (const Json& p : j["pretokenizers"])
      if (!pre_tokenizer_keeps_text(p)) return false;
    return true;
  }
  return false;  // Whitespace, WhitespaceSplit, BertPreTokenizer, anything unknown
}

}  // namespace

bool has_byte_level(const Json& pre_tokenizer) {
  if (type_of(pre_tokenizer) == "ByteLevel") return true;
  if (pre_tokenizer.is_object() && pre_tokenizer.contains("pretokenizers") && pre_tokenizer["pretokenizers"].is_array())
    for (const Json& p : pre_tokenizer["pretokenizers"])
      if (has_byte_level(p)) return true;
  return false;
}

size_t max_input_bytes_per_token(const Json& normalizer, const Json& pre_tokenizer,
                                 size_t longest_token_bytes, bool loses_unknown,
                                 const std::vector<AddedToken>& added) {
  if (loses_unknown || !pre_tokenizer_keeps_text(pre_tokenizer)) return 0;
  const double shrink = normalizer_shrink(normalizer);
  if (shrink == 0) return 0;
  size_t longest = std::max<size_t>(longest_token_bytes, 4);  // byte fallback: one byte per token
  for (const AddedToken& a : added) {
    if (a.lstrip || a.rstrip) return 0;  // absorbs any run of whitespace beside it
    longest = std::max(longest, a.content.size());
  }
  // Invalid UTF-8 is repaired first (one byte may become U+FFFD, 3 bytes): that only grows it.
  return static_cast<size_t>(static_cast<double>(longest) * shrink + 0.999);
}

}  // namespace shardlm::text
