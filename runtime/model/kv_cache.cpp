// KvCache: one scratch allocation, per-layer K/V views into it.
#include "runtime/model/kv_cache.h"

#include <string>

#include "runtime/core/status.h"

namespace shardlm {

KvCache::KvCache(Backend& backend, int64_t n_layer, int64_t n_ctx, int64_t n_head_kv_local,
                 int64_t head_dim)
    : n_layer_(n_layer), n_ctx_(n_ctx), n_head_kv_local_(n_head_kv_local), head_dim_(head_dim) {
  if (n_layer <= 0 || n_ctx <= 0 || n_head_kv_local <= 0 || head_dim <= 0) {
    fail(StatusCode::kInvalidArg,
         "KV cache dims must be positive (n_ctx " + std::to_string(n_ctx) + ")");
  }
  buffer_ = backend.allocate(bytes(), MemoryKind::kScratch);
}

uint64_t KvCache::bytes() const {
  return static_cast<uint64_t>(2 * n_layer_ * n_ctx_ * n_head_kv_local_ * head_dim_) *
         sizeof(float);
}

Tensor KvCache::k(int64_t layer) const {
  float* base =
      static_cast<float*>(buffer_->data()) + (2 * layer) * n_ctx_ * n_head_kv_local_ * head_dim_;
  return Tensor(base, DType::kF32, {n_ctx_, n_head_kv_local_, head_dim_});
}

Tensor KvCache::v(int64_t layer) const {
  float* base = static_cast<float*>(buffer_->data()) +
                (2 * layer + 1) * n_ctx_ * n_head_kv_local_ * head_dim_;
  return Tensor(base, DType::kF32, {n_ctx_, n_head_kv_local_, head_dim_});
}

void KvCache::check_room(int64_t n_new) const {
  if (n_past_ + n_new > n_ctx_) {
    fail(StatusCode::kKvFull, "KV cache full: " + std::to_string(n_past_) + " tokens held + " +
                                  std::to_string(n_new) + " new > n_ctx " +
                                  std::to_string(n_ctx_) + " (raise --n-ctx)");
  }
}

void KvCache::advance(int64_t n_new) {
  check_room(n_new);
  n_past_ += n_new;
}

void KvCache::seq_rm(int64_t pos) {
  if (pos < 0) pos = 0;
  if (pos < n_past_) n_past_ = pos;
}

}  // namespace shardlm
