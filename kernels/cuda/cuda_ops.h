// kernels/cuda: the CUDA kernels of every op the transformer runs, behind host-callable launch
// functions. Plain C++ (no CUDA syntax), so the backend compiles with the host compiler; the
// kernels live in the .cu files next to this header. Each function enqueues work on `stream`
// and returns without synchronizing; a launch failure throws Error(kBackend) naming the op.
// Numerics: activations f32, weights f32/f16/bf16 widened exactly, f32 accumulation; the
// naive twins are in kernels/ref and tests/cuda compares them. Not the backend (no allocation,
// no shape checks beyond launch limits): runtime/backend/cuda does that.
// Shapes use the dimension glossary (n_tokens, n_embd, n_head, n_head_kv, head_dim, n_ff, ...).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "runtime/core/dtype.h"

namespace shardlm::cuda {

// A small int32 array (token ids, positions) for a kernel: either up to kInline values carried
// inside the kernel's parameters (no copy, so a decode step can be captured in a CUDA graph),
// or a device array of any length.
struct I32Arg {
  static constexpr int kInline = 8;
  const int32_t* dev = nullptr;  // device array, or null to use `v`
  int32_t v[kInline] = {};
};

// The most tokens the decode paths (GEMV, split-K attention) take; more go to GEMM / prefill.
inline constexpr int64_t kDecodeMaxTokens = 8;
// Largest head_dim the attention kernels handle.
inline constexpr int64_t kMaxHeadDim = 256;
// Most buffers sum_buffers adds (ranks sharing one device).
inline constexpr int kMaxSumSources = 8;

// Vocab-parallel embedding lookup; ids outside [vocab_start, vocab_start + n_vocab_local) give
// zero rows.   ids [n_tokens], table [n_vocab_local, n_embd] (dtype), out [n_tokens, n_embd]
void embed(const I32Arg& ids, int64_t n_tokens, const void* table, DType dtype,
           int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out,
           cudaStream_t stream);

// RMSNorm per row, optionally fused with the residual add before it: when `residual` is not
// null, x += residual is written back to x first. Then out = x / sqrt(mean(x^2) + eps) * w.
// `out` may alias `x`.   x [n_rows, n], residual [n_rows, n] or null, w [n], out [n_rows, n]
void rms_norm(float* x, const float* residual, const float* w, int64_t n_rows, int64_t n, float eps,
              float* out, cudaStream_t stream);

// Rotary embedding (rotate-half / NeoX), in place; angle = f32(pos) * inv_freq, cos/sin
// correctly rounded to f32 as the reference does.
//   x [n_tokens, n_head, head_dim], pos [n_tokens], inv_freq [head_dim / 2]
void rope(float* x, int64_t n_tokens, int64_t n_head, int64_t head_dim, const I32Arg& pos,
          const float* inv_freq, cudaStream_t stream);

// out = silu(gate) * up.   gate_up [n_tokens, 2 * n_ff], out [n_tokens, n_ff]
void swiglu(const float* gate_up, int64_t n_tokens, int64_t n_ff, float* out, cudaStream_t stream);

// y += x.   y, x [n]
void add(float* y, const float* x, int64_t n, cudaStream_t stream);

// dst = src[:, col_begin : col_begin + n_cols].   src [n_rows, n_src_cols], dst [n_rows, n_cols]
void copy_columns(const float* src, int64_t n_rows, int64_t n_src_cols, int64_t col_begin,
                  int64_t n_cols, float* dst, cudaStream_t stream);

// y[r, :] += bias.   y [n_rows, n_out], bias [n_out]
void add_bias(float* y, const float* bias, int64_t n_rows, int64_t n_out, cudaStream_t stream);

// Splits f32 values into two 16-bit values of `dtype` (f16 or bf16) with x ~= hi + lo:
// hi = round(x), lo = round(x - hi). Two tensor-core GEMMs on hi and lo then give close to f32
// accuracy (relative error ~2^-16 for bf16, ~2^-22 for f16 within its range).
//   x [n], hi [n], lo [n]
void split_hi_lo(const float* x, int64_t n, DType dtype, void* hi, void* lo, cudaStream_t stream);

// Decode matrix-vector product with f32 accumulation, one warp per output row, weights
// streamed with 16-byte loads.   n_tokens <= kDecodeMaxTokens
//   x [n_tokens, n_in], w [n_out, n_in] (dtype), bias [n_out] or null, y [n_tokens, n_out]
void gemv(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype, int64_t n_out,
          const float* bias, float* y, cudaStream_t stream);

// Matmul with block-quantized weights (kInt8 / kInt4, runtime/core/dtype.h rows), any token
// count: each weight dequantized exactly, f32 sums (gemv_quantized.cu).
//   x [n_tokens, n_in], w [n_out rows of row_bytes(dtype, n_in)], bias [n_out] or null,
//   y [n_tokens, n_out]
void gemv_quantized(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
                    int64_t n_out, const float* bias, float* y, cudaStream_t stream);
// embed() for a quantized table.   table [n_vocab_local rows of row_bytes(dtype, n_embd)]
void embed_quantized(const I32Arg& ids, int64_t n_tokens, const void* table, DType dtype,
                     int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out,
                     cudaStream_t stream);

// Split-K decode attention (flash-decoding): each block takes one token, one kv head with the
// query heads that share it (GQA: K/V read once for the group) and one slice of the visible
// keys, and writes an unnormalized partial (max, sum, acc); a second kernel merges the
// slices. Causal with an optional sliding window: query t sees keys j <= pos[t] and
// pos[t] - j < sliding_window when sliding_window > 0. Row j of the cache is position j.
//   q [n_tokens, n_head, head_dim], k/v [n_kv, n_head_kv, head_dim], pos [n_tokens],
//   out [n_tokens, n_head * head_dim], workspace: attention_decode_workspace_bytes(...)
// n_tokens <= kDecodeMaxTokens, head_dim <= kMaxHeadDim, n_head % n_head_kv == 0.
size_t attention_decode_workspace_bytes(int64_t n_tokens, int64_t n_head, int64_t head_dim,
                                        int n_splits);
void attention_decode(const float* q, const float* k, const float* v, const I32Arg& pos,
                      int64_t n_tokens, int64_t n_kv, int64_t n_head, int64_t n_head_kv,
                      int64_t head_dim, int64_t sliding_window, float scale, int n_splits,
                      void* workspace, float* out, cudaStream_t stream);

// Flash-attention-style prefill: each block holds 16 query rows (tokens x heads of one kv
// group) and streams the visible keys through shared memory in tiles of 32 with an online
// softmax; the score matrix is never materialized. Same masking and shapes as
// attention_decode, any n_tokens, head_dim <= kMaxHeadDim.
void attention_prefill(const float* q, const float* k, const float* v, const I32Arg& pos,
                       int64_t n_tokens, int64_t n_kv, int64_t n_head, int64_t n_head_kv,
                       int64_t head_dim, int64_t sliding_window, float scale, float* out,
                       cudaStream_t stream);

// ---- Paged KV cache (the step engine; layout and naive twins in kernels/ref) ----

// Writes each token's K and V rows into the pools at its slot (slot < 0: skipped), converted to
// `kv_dtype` (f32 copy; f16 / bf16 round to nearest even, bit-identical to runtime/core/dtype.h,
// NaN and overflow included).
//   k, v [n_tokens, row] f32, slots [n_tokens] (device), k_pool, v_pool [n_slots, row] (kv_dtype)
//   row = n_head_kv * head_dim
void store_kv(const float* k, const float* v, const int64_t* slots, int64_t n_tokens, int64_t row,
              DType kv_dtype, void* k_pool, void* v_pool, cudaStream_t stream);

// Query rows (tokens x heads of one kv group) per block of the paged prefill kernel.
inline constexpr int kPagedTileRows = 16;
// A sequence with at most this many query tokens in a step takes the split-K decode path
// (each token on its own, keys split over blocks); longer runs take the tiled prefill path.
inline constexpr int64_t kPagedDecodeMaxRun = 8;

// A paged step as the attention kernels read it: device arrays, planned on the host by
// plan_paged_attention (attention_plan.h). Query token t of sequence s sees the keys of s at
// positions j <= pos[t] (and pos[t] - j < sliding_window when > 0); key j lives at slot
// block_table[s * max_blocks + j / block_size] * block_size + j % block_size.
struct PagedStep {
  const int32_t* pos = nullptr;          // [n_tokens]
  const int32_t* block_table = nullptr;  // [n_seqs, max_blocks]
  int64_t max_blocks = 0;
  int64_t block_size = 0;
  // Split-K decode items: query token and its sequence; n_splits key slices each.
  const int32_t* decode_token = nullptr;  // [n_decode]
  const int32_t* decode_seq = nullptr;    // [n_decode]
  int64_t n_decode = 0;
  int n_splits = 1;
  // Prefill tiles: tokens [tile_first, tile_end) of sequence tile_seq.
  const int32_t* tile_seq = nullptr;    // [n_tiles]
  const int32_t* tile_first = nullptr;  // [n_tiles]
  const int32_t* tile_end = nullptr;    // [n_tiles]
  int64_t n_tiles = 0;
};

// Causal attention of a whole paged step, K/V read through the block table from pools of
// `kv_dtype` (widened exactly to f32), f32 accumulation. Decode items: split-K blocks (one item,
// one kv head with up to 8 of its query heads, one key slice), then a combine kernel. Prefill
// tiles: flash-style blocks of kPagedTileRows query rows of one sequence, keys streamed through
// shared memory in tiles of 32 with an online softmax. GQA / MQA: a block serves all the query
// heads of a kv group it holds.
//   q [n_tokens, n_head, head_dim], k_pool / v_pool [n_slots, n_head_kv, head_dim],
//   out [n_tokens, n_head * head_dim], workspace: paged_attention_workspace_bytes(n_decode, ...)
// head_dim <= kMaxHeadDim, n_head % n_head_kv == 0.
size_t paged_attention_workspace_bytes(int64_t n_decode, int64_t n_head, int64_t head_dim,
                                       int n_splits);
void paged_attention(const float* q, int64_t n_head, const void* k_pool, const void* v_pool,
                     DType kv_dtype, int64_t n_head_kv, int64_t head_dim, const PagedStep& step,
                     int64_t sliding_window, float scale, void* workspace, float* out,
                     cudaStream_t stream);

// Row-wise argmax (ties: lowest index) in two passes. When temperature > 0 every element is
// first replaced by x / temperature + Gumbel(seed, index_offset + i), so the argmax is a sample
// of softmax(x / temperature) that does not depend on how the row is split over ranks.
//   x [n_rows, n], out_value [n_rows], out_index [n_rows] (device), workspace:
//   argmax_workspace_bytes(n_rows, n)
size_t argmax_workspace_bytes(int64_t n_rows, int64_t n);
void argmax_rows(const float* x, int64_t n_rows, int64_t n, float temperature, uint64_t seed,
                 int64_t index_offset, void* workspace, float* out_value, int64_t* out_index,
                 cudaStream_t stream);

// dst = srcs[0] + srcs[1] + ... in that order (every caller with the same srcs gets the same
// bits). dst may be one of the srcs only if no other stream reads it concurrently.
//   srcs[i] [n], dst [n], n_srcs <= kMaxSumSources
void sum_buffers(const float* const* srcs, int n_srcs, float* dst, int64_t n, cudaStream_t stream);

}  // namespace shardlm::cuda
