// CPU matmul y = x @ W^T (+ bias): output rows split across the pool; each weight row is read
// once per call (widened to f32 when needed) and dotted with every token's activations.
// On x86-64 GCC/Clang the row loop is also compiled for x86-64-v3 (AVX2) and picked at load
// time (target_clones); both versions do the same f32 operations in the same order (no FMA
// contraction in ISO C++ mode), so results do not depend on the CPU. Hand-written SIMD and
// AVX-512/AMX paths belong to the fast-kernels issue.
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/vec.h"

namespace shardlm::cpu {

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define SHARDLM_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SHARDLM_CLONES
#endif

// Rows [begin, end) of y.   x [n_tokens, n_in], w [n_out, n_in], y [n_tokens, n_out]
SHARDLM_CLONES
void matmul_rows(const float* x, int64_t n_tokens, int64_t n_in, const uint8_t* w, DType dtype,
                 int64_t n_out, const float* bias, float* y, int64_t begin, int64_t end,
                 float* row /* [n_in] scratch */) {
  const size_t row_bytes = static_cast<size_t>(n_in) * dtype_size(dtype);
  for (int64_t o = begin; o < end; ++o) {
    const void* wr = w + static_cast<size_t>(o) * row_bytes;
    const float b = bias ? bias[o] : 0.0f;
    if (dtype == DType::kBF16 && n_tokens == 1) {
      y[o] = vec::dot_bf16(x, static_cast<const uint16_t*>(wr), n_in) + b;
      continue;
    }
    const float* wf = static_cast<const float*>(wr);
    if (dtype != DType::kF32) {
      vec::widen(wr, dtype, n_in, row);
      wf = row;
    }
    for (int64_t t = 0; t < n_tokens; ++t) y[t * n_out + o] = vec::dot(x + t * n_in, wf, n_in) + b;
  }
}

}  // namespace

void matmul(ThreadPool& pool, const float* x, int64_t n_tokens, int64_t n_in, const void* w,
            DType dtype, int64_t n_out, const float* bias, float* y) {
  // Enough rows per chunk that a thread streams a few KiB of weights per wake-up.
  const int64_t min_rows = 16;
  pool.parallel_for(
      n_out,
      [&](int64_t begin, int64_t end) {
        std::vector<float> row(dtype == DType::kF32 ? 0 : static_cast<size_t>(n_in));
        matmul_rows(x, n_tokens, n_in, static_cast<const uint8_t*>(w), dtype, n_out, bias, y, begin,
                    end, row.data());
      },
      min_rows);
}

}  // namespace shardlm::cpu
