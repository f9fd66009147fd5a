// kernels/cpu: the CPU kernels the CPU backend runs. Threaded over a ThreadPool (rows or heads
// split across threads), f32 activations, weights read in place as f32/f16/bf16 with f32
// accumulation. Portable C++ written so compilers vectorize it; ISA-specific dispatch
// (AVX2/AVX-512/AMX) is a later layer. Each op has a naive twin in kernels/ref with the same
// signature minus the pool, and tests/runtime compares them. Shapes use the dimension glossary.
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"
#include "runtime/core/thread_pool.h"

namespace shardlm::cpu {

// Vocab-parallel embedding; out-of-shard ids give zero rows.
//   ids [n_tokens], table [n_vocab_local, n_embd] (dtype), out [n_tokens, n_embd]
void embed(ThreadPool& pool, const int32_t* ids, int64_t n_tokens, const void* table, DType dtype,
           int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out);

// RMSNorm per row; `out` may alias `x`.   x [n_rows, n], w [n], out [n_rows, n]
void rms_norm(ThreadPool& pool, const float* x, const float* w, int64_t n_rows, int64_t n,
              float eps, float* out);

// y = x @ W^T (+ bias). GEMV when n_tokens == 1.
//   x [n_tokens, n_in], w [n_out, n_in] (dtype), bias [n_out] or nullptr, y [n_tokens, n_out]
void matmul(ThreadPool& pool, const float* x, int64_t n_tokens, int64_t n_in, const void* w,
            DType dtype, int64_t n_out, const float* bias, float* y);

// Rotary embedding (rotate_half style), in place.
//   x [n_tokens, n_head, head_dim], pos [n_tokens], inv_freq [head_dim / 2]
void rope(ThreadPool& pool, float* x, int64_t n_tokens, int64_t n_head, int64_t head_dim,
          const int32_t* pos, const float* inv_freq);

// Causal attention against a single sequence's KV cache (row j = position j); see kernels/ref.
//   q [n_tokens, n_head, head_dim], k/v [n_kv, n_head_kv, head_dim], pos [n_tokens],
//   out [n_tokens, n_head * head_dim]
void attention(ThreadPool& pool, const float* q, const float* k, const float* v, const int32_t* pos,
               int64_t n_tokens, int64_t n_kv, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
               int64_t sliding_window, float scale, float* out);

// out = silu(gate) * up.   gate_up [n_tokens, 2 * n_ff], out [n_tokens, n_ff]
void swiglu(ThreadPool& pool, const float* gate_up, int64_t n_tokens, int64_t n_ff, float* out);

// y += x.   y, x [n]
void add(ThreadPool& pool, float* y, const float* x, int64_t n);

// dst = src[:, col_begin : col_begin + n_cols].   src [n_rows, n_src_cols], dst [n_rows, n_cols]
void copy_columns(ThreadPool& pool, const float* src, int64_t n_rows, int64_t n_src_cols,
                  int64_t col_begin, int64_t n_cols, float* dst);

// Index of the largest element (the first on ties).   x [n]
int64_t argmax(const float* x, int64_t n);

}  // namespace shardlm::cpu
