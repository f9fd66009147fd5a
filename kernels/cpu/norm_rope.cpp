// CPU RMSNorm (rows split across the pool, the ISA's row kernel) and rotary embedding (cos/sin
// computed once per token in double, rounded to f32 as Hugging Face does, applied to every head).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/kernel_table.h"

namespace shardlm::cpu {

void rms_norm(const Context& ctx, const float* x, const float* w, int64_t n_rows, int64_t n,
              float eps, float* out) {
  const KernelTable& kt = kernel_table(ctx.isa);
  ctx.pool.parallel_for(
      n_rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) kt.rms_norm_row(x + r * n, w, n, eps, out + r * n);
      },
      std::max<int64_t>(1, 8192 / std::max<int64_t>(1, n)));
}

void rope(const Context& ctx, float* x, int64_t n_tokens, int64_t n_head, int64_t head_dim,
          const int32_t* pos, const float* inv_freq) {
  const int64_t half = head_dim / 2;
  ctx.pool.parallel_for(n_tokens, [&](int64_t begin, int64_t end) {
    std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pos[t]) * inv_freq[i];
        cs[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
        sn[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
      }
      for (int64_t h = 0; h < n_head; ++h) {
        float* v = x + (t * n_head + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * cs[i] - b * sn[i];
          v[i + half] = b * cs[i] + a * sn[i];
        }
      }
    }
  });
}

}  // namespace shardlm::cpu
