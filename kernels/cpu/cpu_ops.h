// kernels/cpu: the CPU kernels the CPU backend runs. f32 activations; weights read in place as
// f32/f16/bf16 with f32 accumulation. Each op splits its work over the context's thread pool
// and runs the inner loops of the context's ISA level (kernel_table.h: scalar, AVX2, AVX-512;
// AMX tiles for the bf16 prefill GEMM, gemm_amx.h). Decode-sized matmuls (<= kGemvMaxTokens
// tokens) stream each weight row once (GEMV); larger ones run a cache-blocked GEMM.
// Each op has a naive twin in kernels/ref with the same signature minus the context, and
// tests/runtime/kernels_test.cpp compares every ISA level this machine runs against it.
// Shapes use the dimension glossary. Not thread-safe per Context (one op at a time).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/isa.h"
#include "kernels/ref/paged_kv.h"
#include "runtime/core/aligned_buffer.h"
#include "runtime/core/dtype.h"
#include "runtime/core/thread_pool.h"

namespace shardlm::cpu {

// Scratch memory for packed GEMM panels and per-thread buffers; grows to the largest request
// and is then reused (no allocation per token). One per backend instance.
class Workspace {
 public:
  // Slot 0: packed panels and per-thread buffers of one op. Slot 1: a matmul's activations
  // rounded to bf16 (MatmulActivations::kBf16) or quantized to int8 (int8 and int4 weights on
  // VNNI), alive while slot 0 is used by the same matmul. 64-byte aligned, contents undefined,
  // valid until the next call for the same slot.
  void* get(size_t bytes, int slot = 0);
  size_t capacity() const { return buf_[0].size() + buf_[1].size(); }

 private:
  AlignedBuffer buf_[2];
};

// What an op runs on.
struct Context {
  ThreadPool& pool;
  Isa isa;
  Workspace& workspace;
  // bf16 parts the AMX GEMM splits activations into: 3 = exact (f32-class error, the default),
  // 2 or 1 = faster and lossier (see gemm_amx.h). Ignored below Isa::kAmx.
  int amx_splits = 3;
  // Matmuls with bf16 weights round their activations to bf16 once per call and sum bf16 x bf16
  // products in f32 (MatmulActivations::kBf16): VDPBF16PS where bf16_dot_supported() and isa >=
  // kAvx512, AMX tiles with one part for the prefill GEMM, else the f32 kernels on the rounded
  // activations (the same products; only the order of the sums differs). paged_attention
  // rounds its queries and softmax numerators the same way (VDPBF16PS for prefill on a bf16
  // pool).
  bool bf16_activations = false;
  // Batch-invariant (deterministic) mode: decode-sized matmuls keep one GEMV kernel for 1 to
  // kGemvMaxTokens tokens, so a token's outputs do not depend on how many tokens share the call.
  // Off, bf16 matmuls of kAmxGemvMinTokens or more tokens run on AMX tiles (gemv_amx.h), which
  // sum in another order than the one-token GEMV.
  bool batch_invariant = false;
  // Decode attention on a bf16 pool reads each 64-key chunk's K and V lines once, in address
  // order, before scoring it (paged_attention.cpp): a sequential read the hardware prefetchers
  // follow, where the per-head passes stride a whole token apart. Reads only; results are the
  // same bits either way. kv_touch_pays() gives the default.
  bool touch_kv = false;
};

// Whether touch_kv pays on this CPU: measured faster on AMD Zen 4 (decode attention 0.73-0.90x
// of its time, docs/benchmarks.md), not measured elsewhere, so on for AMD CPUs only.
bool kv_touch_pays();

// Vocab-parallel embedding; out-of-shard ids give zero rows.
//   ids [n_tokens], table [n_vocab_local, n_embd] (dtype), out [n_tokens, n_embd]
void embed(const Context& ctx, const int32_t* ids, int64_t n_tokens, const void* table, DType dtype,
           int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out);

// RMSNorm per row; `out` may alias `x`.   x [n_rows, n], w [n], out [n_rows, n]
void rms_norm(const Context& ctx, const float* x, const float* w, int64_t n_rows, int64_t n,
              float eps, float* out);

// y = x @ W^T (+ bias).
//   x [n_tokens, n_in], w [n_out, n_in] (dtype), bias [n_out] or nullptr, y [n_tokens, n_out]
void matmul(const Context& ctx, const float* x, int64_t n_tokens, int64_t n_in, const void* w,
            DType dtype, int64_t n_out, const float* bias, float* y);

// Rotary embedding (rotate_half style), in place.
//   x [n_tokens, n_head, head_dim], pos [n_tokens], inv_freq [head_dim / 2]
void rope(const Context& ctx, float* x, int64_t n_tokens, int64_t n_head, int64_t head_dim,
          const int32_t* pos, const float* inv_freq);

// Causal attention against a single sequence's KV cache (row j = position j); see kernels/ref.
//   q [n_tokens, n_head, head_dim], k/v [n_kv, n_head_kv, head_dim], pos [n_tokens],
//   out [n_tokens, n_head * head_dim]
void attention(const Context& ctx, const float* q, const float* k, const float* v,
               const int32_t* pos, int64_t n_tokens, int64_t n_kv, int64_t n_head,
               int64_t n_head_kv, int64_t head_dim, int64_t sliding_window, float scale,
               float* out);

// ---- Paged KV cache (the step engine; layout in kernels/ref/paged_kv.h) ----

// Writes token t's K and V rows into the pools at slot slots[t] (< 0: skipped), converted
// f32 -> kv_dtype with round to nearest even (bit-identical to dtype.h).
//   k, v [n_tokens, n_head_kv, head_dim], slots [n_tokens],
//   k_pool, v_pool [n_slots, n_head_kv, head_dim] (kv_dtype)
void store_kv(const Context& ctx, const float* k, const float* v, const int64_t* slots,
              int64_t n_tokens, int64_t n_head_kv, int64_t head_dim, DType kv_dtype, void* k_pool,
              void* v_pool);

// Causal attention of a whole step, each query against its own sequence's keys read through
// the block table (see kernels/ref and paged_attention.cpp). deterministic = true: each output
// row is the same bits whatever else is in the step (other sequences, prefill chunking) and
// whatever the thread count, at some speed cost (paged_attention.cpp). ctx.bf16_activations:
// queries and softmax numerators are rounded to bf16 before their products
// (ref::paged_attention_bf16_activations); the bf16 GEMM tile runs prefill where it can.
//   q [layout.n_tokens, n_head, kv.head_dim], out [layout.n_tokens, n_head * kv.head_dim]
void paged_attention(const Context& ctx, const float* q, int64_t n_head, const PagedKvView& kv,
                     const StepLayoutView& layout, int64_t sliding_window, float scale,
                     bool deterministic, float* out);

// out = silu(gate) * up.   gate_up [n_tokens, 2 * n_ff], out [n_tokens, n_ff]
void swiglu(const Context& ctx, const float* gate_up, int64_t n_tokens, int64_t n_ff, float* out);

// y += x.   y, x [n]
void add(const Context& ctx, float* y, const float* x, int64_t n);

// dst = src[:, col_begin : col_begin + n_cols].   src [n_rows, n_src_cols], dst [n_rows, n_cols]
void copy_columns(const Context& ctx, const float* src, int64_t n_rows, int64_t n_src_cols,
                  int64_t col_begin, int64_t n_cols, float* dst);

// Index of the largest element (the first on ties).   x [n]
int64_t argmax(const float* x, int64_t n);

}  // namespace shardlm::cpu
