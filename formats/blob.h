// Files carried inside a pack (tokenizer.json, tokenizer_config.json, generation_config.json,
// chat_template.jinja, ...): zstd-compressed with an xxh3 of the raw bytes. No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm {

struct PackBlob {
  std::string name;
  uint64_t raw_size = 0;
  uint64_t xxh3 = 0;  // of the raw bytes
  std::vector<uint8_t> zstd;
};

PackBlob make_blob(const std::string& name, const std::string& raw, int zstd_level = 9);
// Decompresses and checks size and checksum; `where` names the pack file in errors.
std::string open_blob(const std::string& where, const std::string& name, uint64_t raw_size, uint64_t xxh3,
                      const uint8_t* zstd, size_t zstd_size);

uint64_t xxh3_64(const void* data, size_t n);

}  // namespace shardlm
