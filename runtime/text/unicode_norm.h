// Unicode normalization forms NFC, NFD, NFKC and NFKD on UTF-8 strings, from generated tables
// (unicode_tables.inc, made by tools/text/gen_unicode_tables.py). Not a general Unicode
// library: character classes for regexes come from PCRE2.
#pragma once

#include <string>
#include <string_view>

namespace shardlm::text {

enum class NormForm { kNFC, kNFD, kNFKC, kNFKD };

// Normalizes well-formed UTF-8 text. ASCII-only input is returned unchanged quickly.
std::string unicode_normalize(std::string_view s, NormForm form);

}  // namespace shardlm::text
