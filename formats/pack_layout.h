// Which tensors a rank file holds, with their dtype, local and global shapes and split kinds,
// derived from (ModelConfig, ParallelLayout, weight dtype) alone. The packer produces exactly
// this list; the reader checks a pack against it. Names and fusions: formats/tensor_names.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/model_config.h"
#include "runtime/core/dtype.h"

namespace shardlm {

// Values mirror fb::SplitKind.
enum class SplitKind : uint8_t { kReplicated = 0, kColumn = 1, kRow = 2, kVocab = 3, kFirstRank = 4 };
const char* split_kind_name(SplitKind s);

struct PackTensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;         // this rank's
  std::vector<int64_t> global_shape;  // unsharded (fused tensors: fused global shape)
  SplitKind split = SplitKind::kReplicated;
  int split_axis = -1;
};

// Matrices get `weight_dtype`, except the token embedding and the lm_head, which get
// `embedding_dtype`; 1-D tensors (norms, biases) are f32.
std::vector<PackTensorSpec> pack_tensor_specs(const ModelConfig& c, const ParallelLayout& p, DType weight_dtype,
                                              DType embedding_dtype);
inline std::vector<PackTensorSpec> pack_tensor_specs(const ModelConfig& c, const ParallelLayout& p,
                                                     DType weight_dtype) {
  return pack_tensor_specs(c, p, weight_dtype, weight_dtype);
}

}  // namespace shardlm
