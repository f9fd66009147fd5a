// The GPT-2 byte-to-unicode table used by byte-level BPE (ByteLevel pre-tokenizer and decoder):
// each of the 256 byte values maps to one printable code point ('Ġ' for space, ...).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardlm::text {

// UTF-8 string of the code point that stands for byte b.
const std::string& byte_to_char(uint8_t b);

// Byte that code point cp stands for, or -1 when cp is not in the table.
int char_to_byte(uint32_t cp);

// Maps every byte of s to its stand-in code point (the ByteLevel pre-tokenizer transform).
std::string byte_level_encode(std::string_view s);

// Inverse transform: stand-in code points back to bytes; other code points keep their UTF-8.
// The result may be ill-formed UTF-8 (a token can hold part of a character).
std::string byte_level_decode(std::string_view s);

}  // namespace shardlm::text
