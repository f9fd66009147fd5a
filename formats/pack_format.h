// The fixed 4 KiB header at the start of every rank file, and the file-level constants.
// File layout (docs/pack-format.md):
//   [header, 4096 bytes][data section: tensors, each 4096-aligned][manifest: FlatBuffers]
// The manifest is written last so the packer streams tensors in one pass and records their
// checksums; the header (rewritten at the end) says where everything is. All integers are
// little-endian. This file has no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace shardlm {

inline constexpr char kPackMagic[8] = {'S', 'H', 'R', 'D', 'L', 'M', '\0', '\1'};
inline constexpr uint32_t kPackFormatVersion = 1;
inline constexpr uint32_t kPackEndianMark = 0x01020304u;
inline constexpr size_t kPackHeaderSize = 4096;
inline constexpr size_t kPackAlignment = 4096;
inline constexpr const char* kPackerVersion = "shardlm-pack 0.1.0";

struct PackHeader {
  char magic[8];
  uint32_t format_version;
  uint32_t endian_mark;
  uint64_t file_size;
  uint64_t data_offset;
  uint64_t data_size;
  uint64_t manifest_offset;
  uint64_t manifest_size;
  uint64_t manifest_xxh3;
  uint32_t tp_size;
  uint32_t tp_rank;
  uint64_t pack_id;
  uint64_t header_xxh3;  // XXH3-64 of the bytes before this field
};
static_assert(sizeof(PackHeader) == 88, "PackHeader layout is part of the file format");
inline constexpr size_t kPackHeaderHashedBytes = offsetof(PackHeader, header_xxh3);

inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// "rank-<r>-of-<n>.shardlm"
std::string rank_file_name(int rank, int tp_size);

}  // namespace shardlm
