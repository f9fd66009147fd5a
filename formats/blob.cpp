// zstd + xxh3 for carried files.
#include "formats/blob.h"

#include <xxhash.h>
#include <zstd.h>

#include "runtime/core/status.h"

namespace shardlm {

uint64_t xxh3_64(const void* data, size_t n) { return XXH3_64bits(data, n); }

PackBlob make_blob(const std::string& name, const std::string& raw, int zstd_level) {
  PackBlob b;
  b.name = name;
  b.raw_size = raw.size();
  b.xxh3 = xxh3_64(raw.data(), raw.size());
  b.zstd.resize(ZSTD_compressBound(raw.size()));
  const size_t n = ZSTD_compress(b.zstd.data(), b.zstd.size(), raw.data(), raw.size(), zstd_level);
  if (ZSTD_isError(n)) fail(StatusCode::kInternal, "zstd compression of " + name + " failed: " + ZSTD_getErrorName(n));
  b.zstd.resize(n);
  return b;
}

std::string open_blob(const std::string& where, const std::string& name, uint64_t raw_size, uint64_t xxh3,
                      const uint8_t* zstd, size_t zstd_size) {
  const unsigned long long content = ZSTD_getFrameContentSize(zstd, zstd_size);
  if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN || content != raw_size)
    fail(StatusCode::kFormat, where + ": carried file '" + name + "' is corrupt (bad zstd frame)");
  std::string out(raw_size, '\0');
  const size_t n = ZSTD_decompress(out.data(), out.size(), zstd, zstd_size);
  if (ZSTD_isError(n) || n != raw_size)
    fail(StatusCode::kFormat, where + ": carried file '" + name + "' is corrupt (zstd: " +
                                  (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short") + ")");
  if (xxh3_64(out.data(), out.size()) != xxh3)
    fail(StatusCode::kFormat, where + ": carried file '" + name + "' fails its checksum");
  return out;
}

}  // namespace shardlm
