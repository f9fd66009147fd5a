// CPU element-wise and data-movement ops: embedding lookup, SwiGLU, residual add, column copy,
// argmax. Small inputs (a decode step's few thousand floats) run inline on the caller.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/kernel_table.h"
#include "runtime/core/quant.h"

namespace shardlm::cpu {

namespace {
constexpr int64_t kMinElems = 1 << 14;  // below this, threading costs more than it saves
}

void embed(const Context& ctx, const int32_t* ids, int64_t n_tokens, const void* table, DType dtype,
           int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out) {
  const KernelTable& kt = kernel_table(ctx.isa);
  const size_t row_size = row_bytes(dtype, n_embd);
  ctx.pool.parallel_for(
      n_tokens,
      [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t row = static_cast<int64_t>(ids[t]) - vocab_start;
          float* o = out + t * n_embd;
          if (row < 0 || row >= n_vocab_local) {
            std::memset(o, 0, static_cast<size_t>(n_embd) * sizeof(float));
          } else if (is_quantized(dtype)) {
            dequantize_row(dtype,
                           static_cast<const uint8_t*>(table) + static_cast<size_t>(row) * row_size,
                           n_embd, o);
          } else {
            kt.widen(static_cast<const uint8_t*>(table) + static_cast<size_t>(row) * row_size,
                     dtype, n_embd, o);
          }
        }
      },
      std::max<int64_t>(1, kMinElems / std::max<int64_t>(1, n_embd)));
}

void swiglu(const Context& ctx, const float* gate_up, int64_t n_tokens, int64_t n_ff, float* out) {
  const KernelTable& kt = kernel_table(ctx.isa);
  ctx.pool.parallel_for(
      n_tokens,
      [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          kt.swiglu_row(gate_up + t * 2 * n_ff, gate_up + t * 2 * n_ff + n_ff, n_ff,
                        out + t * n_ff);
        }
      },
      std::max<int64_t>(1, kMinElems / std::max<int64_t>(1, n_ff)));
}

void add(const Context& ctx, float* y, const float* x, int64_t n) {
  const KernelTable& kt = kernel_table(ctx.isa);
  ctx.pool.parallel_for(
      n, [&](int64_t begin, int64_t end) { kt.add(y + begin, x + begin, end - begin); }, kMinElems);
}

void copy_columns(const Context& ctx, const float* src, int64_t n_rows, int64_t n_src_cols,
                  int64_t col_begin, int64_t n_cols, float* dst) {
  ctx.pool.parallel_for(
      n_rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          std::memcpy(dst + r * n_cols, src + r * n_src_cols + col_begin,
                      static_cast<size_t>(n_cols) * sizeof(float));
        }
      },
      std::max<int64_t>(1, kMinElems / std::max<int64_t>(1, n_cols)));
}

int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

}  // namespace shardlm::cpu
