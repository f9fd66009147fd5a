// Writes one rank file: declare every tensor (offsets are assigned at once, 4096-aligned), stream
// each tensor's bytes in order (hashed on the way), then finish() writes the manifest after the
// data, the header in front and fsyncs; commit() renames the temporary file to its final name.
// Until finish() succeeds only "<final>.tmp-<pid>" exists; the destructor removes it, so an
// interrupted writer never leaves a file that loads. Not a reader; no sharding logic here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/blob.h"
#include "formats/memory_plan.h"
#include "formats/model_config.h"
#include "formats/pack_layout.h"
#include "formats/pack_reader.h"
#include "runtime/core/dtype.h"

namespace shardlm {

struct PackManifestInfo {
  ModelConfig config;
  ParallelLayout parallel;
  MemoryPlan plan;
  DType weight_dtype = DType::kF32;
  DType embedding_dtype = DType::kF32;  // tok_embd / output (= weight_dtype unless quantized)
  uint64_t pack_id = 0;
  int64_t created_unix = 0;
  std::vector<const PackBlob*> files;
  std::vector<SourceFileInfo> sources;
};

class PackWriter {
 public:
  // Creates "<final_path>.tmp-<pid>". Throws Error(kIo) naming the path when it cannot.
  explicit PackWriter(std::string final_path);
  ~PackWriter();
  PackWriter(const PackWriter&) = delete;
  PackWriter& operator=(const PackWriter&) = delete;

  // Declares a tensor; returns its index. All declarations come before any write.
  size_t declare(PackTensorSpec spec);
  uint64_t tensor_nbytes(size_t index) const;
  uint64_t data_bytes() const { return data_size_; }

  // Appends bytes to tensor `index`; tensors may be written in any order, each one's bytes in order.
  void append(size_t index, const void* bytes, size_t n);

  // Every tensor must be complete. Writes manifest + header and fsyncs the temporary file.
  // Returns the file size.
  uint64_t finish(const PackManifestInfo& info);
  // Renames the finished temporary file to its final name and fsyncs the directory. Kept apart
  // from finish() so a multi-rank pack renames only once every rank is safely on disk.
  void commit();

  const std::string& final_path() const { return final_path_; }

 private:
  struct Entry;
  std::string final_path_;
  std::string temp_path_;
  int fd_ = -1;
  bool finished_ = false;
  bool committed_ = false;
  uint64_t data_size_ = 0;
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace shardlm
