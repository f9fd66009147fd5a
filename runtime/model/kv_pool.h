// The paged KV cache of one rank: per layer, K and V pools of n_blocks blocks of block_size token
// slots, each slot [n_head_kv_local, head_dim] in the KV dtype (bf16 by default, f16 or f32):
//   k(layer), v(layer)   [n_blocks * block_size, n_head_kv_local, head_dim]
// Slot = block * block_size + offset; which sequence owns which block is the driver's business
// (engine/block_manager.h): the pool is only memory, allocated once at load and never per
// sequence. Not the attention (model/transformer.h) and not the bookkeeping.
#pragma once

#include <cstdint>
#include <memory>

#include "runtime/backend/backend.h"

namespace shardlm {

struct KvPoolShape {
  int64_t n_layer = 0;
  int64_t n_blocks = 0;
  int64_t block_size = 16;
  int64_t n_head_kv_local = 0;
  int64_t head_dim = 0;
  DType dtype = DType::kBF16;

  int64_t n_slots() const { return n_blocks * block_size; }
  // Bytes of one block over all layers, K and V.
  uint64_t bytes_per_block() const;
  uint64_t bytes() const { return bytes_per_block() * static_cast<uint64_t>(n_blocks); }
};

class KvPool {
 public:
  // One allocation on `backend` (kScratch). Throws Error(kInvalidArg) for non-positive dims and
  // whatever the backend throws when the memory is not there (kOom).
  KvPool(Backend& backend, const KvPoolShape& shape);

  const KvPoolShape& shape() const { return shape_; }
  Tensor k(int64_t layer) const;
  Tensor v(int64_t layer) const;

 private:
  Tensor view(int64_t index) const;

  KvPoolShape shape_;
  std::unique_ptr<DeviceBuffer> buffer_;
};

}  // namespace shardlm
