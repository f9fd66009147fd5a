// Opens and validates one rank file of a pack (mmap), and finds the rank files of a pack set.
// Checks, in order: file size and header (magic, version, endianness, header checksum), section
// bounds, the manifest checksum, the FlatBuffers Verifier, then semantics the Verifier cannot see
// (enum ranges, tensor offsets/sizes inside the data section, alignment, shapes against the
// config and layout, rank/tp). Any failure throws Error(kFormat) naming the file and the field.
// Tensor bytes are not hashed on open; verify_tensors() does that.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/memory_plan.h"
#include "formats/model_config.h"
#include "formats/pack_format.h"
#include "formats/pack_layout.h"
#include "runtime/core/dtype.h"
#include "runtime/core/mapped_file.h"

namespace shardlm {

struct PackTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;         // this rank's
  std::vector<int64_t> global_shape;  // unsharded
  SplitKind split = SplitKind::kReplicated;
  int split_axis = -1;
  uint64_t offset = 0;  // into the data section
  uint64_t nbytes = 0;
  uint64_t xxh3 = 0;
  const uint8_t* data = nullptr;  // inside the mapping, 4096-aligned

  int64_t numel() const;
};

struct SourceFileInfo {
  std::string name;
  uint64_t size = 0;
  uint64_t xxh3 = 0;
};

// Reads and checks the 4 KiB header only (no mmap of the file). Used to check that a set of rank
// files belongs together without mapping other ranks' weights.
PackHeader read_pack_header(const std::string& path);

class PackReader {
 public:
  static std::unique_ptr<PackReader> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const PackHeader& header() const { return header_; }
  const ModelConfig& config() const { return config_; }
  const ParallelLayout& parallel() const { return parallel_; }
  const MemoryPlan& plan() const { return plan_; }
  DType weight_dtype() const { return weight_dtype_; }
  // The token embedding's and lm_head's dtype (weight_dtype() unless that is quantized).
  DType embedding_dtype() const { return embedding_dtype_; }
  uint64_t pack_id() const { return header_.pack_id; }
  const std::string& packer_version() const { return packer_version_; }
  int64_t created_unix() const { return created_unix_; }

  const std::vector<PackTensor>& tensors() const { return tensors_; }
  const PackTensor* find(std::string_view name) const;
  // Throws Error(kFormat) "<file>: tensor '<name>' is missing" when absent.
  const PackTensor& require(std::string_view name) const;

  // Carried files ("tokenizer.json", "tokenizer_config.json", "generation_config.json",
  // "chat_template.jinja", ...), decompressed and checked against their xxh3.
  std::vector<std::string> file_names() const;
  bool has_file(std::string_view name) const;
  std::string file(std::string_view name) const;  // throws Error(kFormat) if absent or corrupt

  const std::vector<SourceFileInfo>& sources() const { return sources_; }

  // Re-hashes every tensor; throws Error(kFormat) naming the first tensor whose bytes changed.
  // `progress(done_bytes, total_bytes)` is called between tensors when given.
  void verify_tensors(const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

  const MappedFile& mapping() const { return *file_; }

 private:
  PackReader() = default;
  void load();

  std::unique_ptr<MappedFile> file_;
  PackHeader header_{};
  ModelConfig config_;
  ParallelLayout parallel_;
  MemoryPlan plan_;
  DType weight_dtype_ = DType::kF32;
  DType embedding_dtype_ = DType::kF32;
  std::string packer_version_;
  int64_t created_unix_ = 0;
  std::vector<PackTensor> tensors_;
  std::vector<SourceFileInfo> sources_;
  struct Blob {
    std::string name;
    uint64_t raw_size;
    uint64_t xxh3;
    const uint8_t* zstd;
    size_t zstd_size;
  };
  std::vector<Blob> blobs_;
};

// The rank files of a pack directory.
struct PackSet {
  std::string dir;
  int tp_size = 0;
  std::vector<std::string> rank_paths;  // index = rank
};

// Finds rank-<r>-of-<N>.shardlm files in `dir`. `expected_tp` 0 accepts whatever N is there.
// Throws Error(kIo/kFormat/kInvalidArg) when the directory has none, several different N, a rank
// missing, a tp different from expected_tp, or ranks whose headers disagree (different packs).
PackSet find_pack_set(const std::string& dir, int expected_tp = 0);

}  // namespace shardlm
