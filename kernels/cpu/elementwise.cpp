// CPU element-wise and data-movement ops: embedding lookup, SwiGLU, residual add, column copy,
// argmax.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/vec.h"

namespace shardlm::cpu {

namespace {
constexpr int64_t kMinElems = 1 << 14;  // below this, threading costs more than it saves
}

void embed(ThreadPool& pool, const int32_t* ids, int64_t n_tokens, const void* table, DType dtype,
           int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out) {
  const size_t row_bytes = static_cast<size_t>(n_embd) * dtype_size(dtype);
  pool.parallel_for(n_tokens, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t row = static_cast<int64_t>(ids[t]) - vocab_start;
      float* o = out + t * n_embd;
      if (row < 0 || row >= n_vocab_local) {
        std::memset(o, 0, static_cast<size_t>(n_embd) * sizeof(float));
      } else {
        vec::widen(static_cast<const uint8_t*>(table) + static_cast<size_t>(row) * row_bytes, dtype,
                   n_embd, o);
      }
    }
  });
}

void swiglu(ThreadPool& pool, const float* gate_up, int64_t n_tokens, int64_t n_ff, float* out) {
  pool.parallel_for(
      n_tokens * n_ff,
      [&](int64_t begin, int64_t end) {
        for (int64_t e = begin; e < end; ++e) {
          const int64_t t = e / n_ff, i = e % n_ff;
          const float g = gate_up[t * 2 * n_ff + i];
          const float u = gate_up[t * 2 * n_ff + n_ff + i];
          out[e] = g / (1.0f + std::exp(-g)) * u;
        }
      },
      kMinElems);
}

void add(ThreadPool& pool, float* y, const float* x, int64_t n) {
  pool.parallel_for(
      n,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) y[i] += x[i];
      },
      kMinElems);
}

void copy_columns(ThreadPool& pool, const float* src, int64_t n_rows, int64_t n_src_cols,
                  int64_t col_begin, int64_t n_cols, float* dst) {
  pool.parallel_for(
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
