// Reader for Hugging Face safetensors checkpoints (mmap), single-file and sharded through
// model.safetensors.index.json. Validates like the reference implementation: header length
// <= 100 MB and inside the file, UTF-8 JSON, known dtypes, product(shape) * dtype size ==
// end - begin (overflow-checked), offsets in bounds, sorted, contiguous without gaps or overlap,
// and the data section exactly covered (a truncated file is caught).
// Errors throw shardlm::Error(kFormat / kIo) naming the file and the tensor or field.
// Not a writer (tests have their own small writer in tests/support).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/mapped_file.h"

namespace shardlm {

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafeTensor {
  std::string name;
  std::string dtype_name;        // as in the file: "BF16", "F32", "I64", ...
  std::optional<DType> dtype;    // set for the float types shardlm reads (F32, F16, BF16)
  std::vector<int64_t> shape;
  uint64_t begin = 0;            // absolute file offsets of the bytes
  uint64_t end = 0;
  const uint8_t* data = nullptr;
  const class SafetensorsFile* file = nullptr;

  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

class SafetensorsFile {
 public:
  // Maps and validates `path`.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return map_.path(); }
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const SafeTensor* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const MappedFile& mapping() const { return map_; }

 private:
  MappedFile map_;
  std::vector<SafeTensor> tensors_;  // sorted by name
  std::map<std::string, std::string> metadata_;
};

// All safetensors files of a checkpoint directory, addressed by tensor name.
class Checkpoint {
 public:
  // Uses model.safetensors.index.json when present (every file it names must exist and hold the
  // tensors the index says), else model.safetensors, else every *.safetensors in the directory.
  explicit Checkpoint(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const SafeTensor* find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  uint64_t total_bytes() const;  // sum of file sizes

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafeTensor*, std::less<>> by_name_;
};

}  // namespace shardlm
