// The per-rank KV cache of one sequence: pre-allocated once for n_ctx tokens, f32, laid out
// per layer as K [n_ctx, n_head_kv_local, head_dim] and V likewise, row j = position j.
// Decoding appends one row per layer; nothing is recomputed or moved. Verbs follow llama.cpp's
// seq_* vocabulary for a single sequence. The one-sequence path (Engine::eval, generate());
// the step engine uses the paged pool (kv_pool.h) instead. A full cache throws Error(kKvFull),
// never overruns.
#pragma once

#include <cstdint>
#include <memory>

#include "runtime/backend/backend.h"

namespace shardlm {

class KvCache {
 public:
  KvCache(Backend& backend, int64_t n_layer, int64_t n_ctx, int64_t n_head_kv_local,
          int64_t head_dim);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_past() const { return n_past_; }           // tokens held
  int64_t seq_pos_max() const { return n_past_ - 1; }  // -1 when empty
  uint64_t bytes() const;

  // K and V of `layer`: [n_ctx, n_head_kv_local, head_dim]. Rows >= n_past() are free.
  Tensor k(int64_t layer) const;
  Tensor v(int64_t layer) const;

  // Throws Error(kKvFull) with both numbers when `n_new` more tokens do not fit.
  void check_room(int64_t n_new) const;
  // Marks `n_new` rows after n_past() as filled (after a forward wrote them).
  void advance(int64_t n_new);
  // Drops positions >= pos (seq_rm(pos, end)); pos 0 empties the cache.
  void seq_rm(int64_t pos);

 private:
  int64_t n_layer_, n_ctx_, n_head_kv_local_, head_dim_;
  int64_t n_past_ = 0;
  std::unique_ptr<DeviceBuffer> buffer_;
};

}  // namespace shardlm
