// Read-only memory mapping of a whole file (RAII). Used for safetensors sources and for packs.
// Not a general file API: no writing, no partial mappings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace shardlm {

class MappedFile {
 public:
  // Maps `path` read-only. Throws Error(kIo) naming the path when it cannot.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints for the page cache; both are best-effort and never fail.
  void advise_sequential() const;
  // Drops this process's pages of [offset, offset + len) (the page cache keeps them).
  void release(size_t offset, size_t len) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace shardlm
