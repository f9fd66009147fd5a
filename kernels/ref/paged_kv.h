// The argument structs of the paged-KV ops (store_kv / paged_attention in kernels/ref and
// kernels/cpu): non-owning views of a rank's K/V pools of one layer and of where a step's
// tokens sit in their sequences. Plain data, no behaviour; the one definition both sides use.
// Not the pool itself (runtime/model/kv_pool.h) and not the block bookkeeping.
//
// Layout: a pool is [n_slots, n_head_kv, head_dim] in `dtype`, n_slots = n_blocks * block_size.
// Sequence s owns the step's query rows [seq_starts[s], seq_starts[s + 1]); its key at position
// j lives at slot block_table[s * max_blocks + j / block_size] * block_size + j % block_size.
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"

namespace shardlm {

// One layer's K and V pools of one rank.
struct PagedKvView {
  const void* k;  // [n_slots, n_head_kv, head_dim]  (dtype)
  const void* v;  // [n_slots, n_head_kv, head_dim]  (dtype)
  DType dtype;    // f32, f16, bf16 or f8e4m3 (is_kv_dtype)
  int64_t block_size;
  int64_t n_head_kv;
  int64_t head_dim;
};

// Where a step's query tokens sit. Every position <= pos[t] of token t's sequence must already
// be stored in the pool (store_kv runs first) and mapped by the block table.
struct StepLayoutView {
  const int32_t* pos;  // [n_tokens]
  int64_t n_tokens;
  const int32_t* seq_starts;  // [n_seqs + 1], seq_starts[0] = 0, seq_starts[n_seqs] = n_tokens
  int64_t n_seqs;
  const int32_t* block_table;  // [n_seqs, max_blocks], -1 padded
  int64_t max_blocks;
};

}  // namespace shardlm
