// GPT-2 bytes_to_unicode table (see byte_level.h).
#include "runtime/text/byte_level.h"

#include "runtime/text/utf8.h"

namespace shardlm::text {

namespace {
struct Table {
  std::array<std::string, 256> enc;
  std::array<int, 512> dec;  // stand-in code points are all below 0x144
  Table() {
    dec.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = keep ? b : 256 + n++;
      utf8_append(enc[b], cp);
      dec[cp] = b;
    }
  }
};
const Table& table() {
  static const Table t;
  return t;
}
}  // namespace

const std::string& byte_to_char(uint8_t b) {
  return table().enc[b];
}

int char_to_byte(uint32_t cp) {
  return cp < 512 ? table().dec[cp] : -1;
}

std::string byte_level_encode(std::string_view s) {
  const Table& t = table();
  std::string out;
  out.reserve(s.size() * 2);
  for (char c : s) out += t.enc[static_cast<uint8_t>(c)];
  return out;
}

std::string byte_level_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = utf8_valid_len(s, i);
    if (n == 0) {  // not well formed: keep the byte as is
      out.push_back(s[i++]);
      continue;
    }
    const size_t start = i;
    const uint32_t cp = utf8_next(s, i);
    const int b = char_to_byte(cp);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(s.substr(start, n));
    }
  }
  return out;
}

}  // namespace shardlm::text
