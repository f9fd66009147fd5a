// UTF-8 helpers for the text library: decode/encode one code point, validate, and repair
// invalid input the way Python's bytes.decode("utf-8", "replace") and Rust's
// String::from_utf8_lossy do (one U+FFFD per maximal ill-formed subpart).
// Not a Unicode database: properties live in unicode_norm.h and in PCRE2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shardlm::text {

// Length in bytes of the well-formed UTF-8 sequence starting at s[i], or 0 when the bytes there
// do not start a well-formed sequence.
size_t utf8_valid_len(std::string_view s, size_t i);

// Decodes the code point at s[i] (must be well formed, see utf8_valid_len); advances i.
uint32_t utf8_next(std::string_view s, size_t& i);

// Appends the UTF-8 encoding of cp.
void utf8_append(std::string& out, uint32_t cp);

// True when s is entirely well-formed UTF-8.
bool utf8_is_valid(std::string_view s);

// Copy of s with every maximal ill-formed subpart replaced by U+FFFD (lossy repair).
std::string utf8_sanitize(std::string_view s);

// Code points of a well-formed UTF-8 string.
std::vector<uint32_t> utf8_decode_all(std::string_view s);

// Number of bytes at the end of s that form an incomplete (but so far valid) sequence prefix.
size_t utf8_incomplete_tail(std::string_view s);

}  // namespace shardlm::text
