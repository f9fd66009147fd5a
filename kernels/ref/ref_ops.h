// kernels/ref: the naive scalar twin of every op, the test oracle for every backend.
// Written for obviousness, not speed: single-threaded, double accumulation, no SIMD. Never used
// by the runtime's hot path. Shapes use the dimension glossary (n_tokens, n_embd, n_head,
// n_head_kv, head_dim, n_ff, n_vocab; `_local` = this rank's share). All activations are f32,
// row-major and contiguous; weight matrices may be f32, f16 or bf16, row-major [n_out, n_in].
#pragma once

#include <cstdint>

#include "kernels/ref/paged_kv.h"
#include "runtime/core/dtype.h"

namespace shardlm::ref {

// Weight element i of a matrix stored as `dtype`, widened to f32.
float load_weight(const void* w, DType dtype, int64_t i);

// Vocab-parallel embedding lookup. Ids outside [vocab_start, vocab_start + n_vocab_local) give
// a zero row (the all-reduce over ranks fills them in).
//   ids   [n_tokens]
//   table [n_vocab_local, n_embd]  (dtype)
//   out   [n_tokens, n_embd]
void embed(const int32_t* ids, int64_t n_tokens, const void* table, DType dtype,
           int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out);

// RMSNorm per row: out = x / sqrt(mean(x^2) + eps) * w. `out` may alias `x`.
//   x   [n_rows, n]
//   w   [n]
//   out [n_rows, n]
void rms_norm(const float* x, const float* w, int64_t n_rows, int64_t n, float eps, float* out);

// y = x @ W^T (+ bias).
//   x    [n_tokens, n_in]
//   w    [n_out, n_in]  (dtype)
//   bias [n_out] or nullptr
//   y    [n_tokens, n_out]
void matmul(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
            int64_t n_out, const float* bias, float* y);

// Quantized weights with int8 activations (the VNNI GEMVs): every activation row quantized like
// an int8 weight row (quantize_row_int8), dequantized, then matmul. dtype is kInt8 or kInt4.
// Shapes as matmul.
void matmul_int8_activations(const float* x, int64_t n_tokens, int64_t n_in, const void* w,
                             DType dtype, int64_t n_out, const float* bias, float* y);

// matmul with every activation first rounded to bf16 (round to nearest even), the
// MatmulActivations::kBf16 mode. Quantized weights are dequantized and rounded to bf16 too (what
// the bf16 prefill GEMM multiplies). Shapes as matmul.
void matmul_bf16_activations(const float* x, int64_t n_tokens, int64_t n_in, const void* w,
                             DType dtype, int64_t n_out, const float* bias, float* y);

// Rotary embedding, "rotate_half" (NeoX) style, in place: for i < head_dim/2 with
// angle = pos * inv_freq[i]: (x[i], x[i+half]) <- (x[i] c - x[i+half] s, x[i+half] c + x[i] s).
// The angle is the f32 product and cos/sin are rounded to f32 (as Hugging Face computes them).
//   x        [n_tokens, n_head, head_dim]
//   pos      [n_tokens]
//   inv_freq [head_dim / 2]
void rope(float* x, int64_t n_tokens, int64_t n_head, int64_t head_dim, const int32_t* pos,
          const float* inv_freq);

// Causal scaled-dot-product attention of new queries against a single sequence's KV cache,
// whose row j holds position j. Query t attends keys j <= pos[t] (and pos[t] - j < window when
// sliding_window > 0). GQA: query head h reads kv head h / (n_head / n_head_kv).
//   q   [n_tokens, n_head, head_dim]
//   k   [n_kv, n_head_kv, head_dim]
//   v   [n_kv, n_head_kv, head_dim]
//   pos [n_tokens]   (each < n_kv)
//   out [n_tokens, n_head * head_dim]
void attention(const float* q, const float* k, const float* v, const int32_t* pos, int64_t n_tokens,
               int64_t n_kv, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
               int64_t sliding_window, float scale, float* out);

// SwiGLU on a fused gate/up activation: out = silu(gate) * up.
//   gate_up [n_tokens, 2 * n_ff]  (gate columns, then up columns)
//   out     [n_tokens, n_ff]
void swiglu(const float* gate_up, int64_t n_tokens, int64_t n_ff, float* out);

// y += x.   y, x [n]
void add(float* y, const float* x, int64_t n);

// Copies columns [col_begin, col_begin + n_cols) of src into dst.
//   src [n_rows, n_src_cols]
//   dst [n_rows, n_cols]
void copy_columns(const float* src, int64_t n_rows, int64_t n_src_cols, int64_t col_begin,
                  int64_t n_cols, float* dst);

// Index of the largest element (the first one on ties).   x [n]
int64_t argmax(const float* x, int64_t n);

// ---- Paged KV cache (the step engine; layout in kernels/ref/paged_kv.h) ----

// Writes token t's K and V rows into the pools at slot slots[t], converted f32 -> kv_dtype
// (round to nearest even, as dtype.h). slots[t] < 0: token t is skipped.
//   k, v           [n_tokens, n_head_kv, head_dim]
//   slots          [n_tokens]
//   k_pool, v_pool [n_slots, n_head_kv, head_dim]  (kv_dtype)
void store_kv(const float* k, const float* v, const int64_t* slots, int64_t n_tokens,
              int64_t n_head_kv, int64_t head_dim, DType kv_dtype, void* k_pool, void* v_pool);

// Causal attention of a whole step: query token t of sequence s attends the keys of s at
// positions j <= pos[t] (and pos[t] - j < sliding_window when > 0), read through s's block
// table from pools of kv.dtype (widened exactly). GQA: query head h reads kv head
// h / (n_head / kv.n_head_kv). `deterministic` is accepted for signature parity and ignored:
// this loop computes every row the same way whatever else is in the step.
//   q   [layout.n_tokens, n_head, kv.head_dim]
//   out [layout.n_tokens, n_head * kv.head_dim]
void paged_attention(const float* q, int64_t n_head, const PagedKvView& kv,
                     const StepLayoutView& layout, int64_t sliding_window, float scale,
                     bool deterministic, float* out);

// paged_attention in the MatmulActivations::kBf16 mode (cpu::Context::bf16_activations, what
// PyTorch's bf16 attention multiplies): every query element and every softmax
// numerator exp(s - max) rounded to bf16 (nearest even) before its products; sums, the
// softmax's denominator (of the unrounded numerators) and the division exact. Shapes as
// paged_attention.
void paged_attention_bf16_activations(const float* q, int64_t n_head, const PagedKvView& kv,
                                      const StepLayoutView& layout, int64_t sliding_window,
                                      float scale, float* out);

// Test helper: positions [0, n_pos) of one sequence, gathered through its block table and
// widened to f32 rows (row j = position j, the layout ref::attention reads).
//   block_table_row [>= ceil(n_pos / kv.block_size)]
//   k, v            [n_pos, kv.n_head_kv, kv.head_dim]
void gather_kv(const PagedKvView& kv, const int32_t* block_table_row, int64_t n_pos, float* k,
               float* v);

}  // namespace shardlm::ref
