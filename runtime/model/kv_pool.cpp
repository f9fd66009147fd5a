// KvPool: one backend allocation, per-layer K/V views into it.
#include "runtime/model/kv_pool.h"

#include <string>

#include "runtime/core/status.h"

namespace shardlm {

uint64_t KvPoolShape::bytes_per_block() const {
  return 2ull * static_cast<uint64_t>(n_layer * block_size * n_head_kv_local * head_dim) *
         dtype_size(dtype);
}

KvPool::KvPool(Backend& backend, const KvPoolShape& shape) : shape_(shape) {
  if (shape.n_layer <= 0 || shape.n_blocks <= 0 || shape.block_size <= 0 ||
      shape.n_head_kv_local <= 0 || shape.head_dim <= 0) {
    fail(StatusCode::kInvalidArg,
         "KV pool dims must be positive (blocks " + std::to_string(shape.n_blocks) +
             ", block_size " + std::to_string(shape.block_size) + ")");
  }
  if (!backend.supports_kv_dtype(shape.dtype)) {
    fail(StatusCode::kInvalidArg,
         std::string("KV cache dtype ") + dtype_name(shape.dtype) + ": the " + backend.name() +
             " backend does not store it" +
             (is_kv_dtype(shape.dtype) ? "; use bf16, f16 or f32 there"
                                       : " (KV types: bf16, f16, f32, f8e4m3)"));
  }
  buffer_ = backend.allocate(shape.bytes(), MemoryKind::kScratch);
}

Tensor KvPool::view(int64_t index) const {
  const size_t per = static_cast<size_t>(shape_.n_slots() * shape_.n_head_kv_local *
                                         shape_.head_dim) *
                     dtype_size(shape_.dtype);
  char* base = static_cast<char*>(buffer_->data()) + static_cast<size_t>(index) * per;
  return Tensor(base, shape_.dtype, {shape_.n_slots(), shape_.n_head_kv_local, shape_.head_dim});
}

Tensor KvPool::k(int64_t layer) const {
  return view(2 * layer);
}
Tensor KvPool::v(int64_t layer) const {
  return view(2 * layer + 1);
}

}  // namespace shardlm
