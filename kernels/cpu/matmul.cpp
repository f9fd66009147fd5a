// CPU matmul y = x @ W^T (+ bias): output rows split across the pool; each weight row is read
// once per call (widened to f32 when needed) and dotted with every token's activations.
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/vec.h"

namespace shardlm::cpu {

void matmul(ThreadPool& pool, const float* x, int64_t n_tokens, int64_t n_in, const void* w,
            DType dtype, int64_t n_out, const float* bias, float* y) {
  const size_t row_bytes = static_cast<size_t>(n_in) * dtype_size(dtype);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  // Enough rows per chunk that a thread streams a few KiB of weights per wake-up.
  const int64_t min_rows = 16;
  pool.parallel_for(
      n_out,
      [&](int64_t begin, int64_t end) {
        std::vector<float> row(dtype == DType::kF32 ? 0 : static_cast<size_t>(n_in));
        for (int64_t o = begin; o < end; ++o) {
          const void* wr = wb + static_cast<size_t>(o) * row_bytes;
          const float b = bias ? bias[o] : 0.0f;
          if (dtype == DType::kBF16 && n_tokens == 1) {
            y[o] = vec::dot_bf16(x, static_cast<const uint16_t*>(wr), n_in) + b;
            continue;
          }
          const float* wf = static_cast<const float*>(wr);
          if (dtype != DType::kF32) {
            vec::widen(wr, dtype, n_in, row.data());
            wf = row.data();
          }
          for (int64_t t = 0; t < n_tokens; ++t) {
            y[t * n_out + o] = vec::dot(x + t * n_in, wf, n_in) + b;
          }
        }
      },
      min_rows);
}

}  // namespace shardlm::cpu
