// CPU RMSNorm (rows split across the pool, double sum of squares) and rotary embedding
// (cos/sin computed once per token and applied to every head).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_ops.h"

namespace shardlm::cpu {

void rms_norm(ThreadPool& pool, const float* x, const float* w, int64_t n_rows, int64_t n,
              float eps, float* out) {
  pool.parallel_for(
      n_rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const float* xr = x + r * n;
          float* yr = out + r * n;
          double ss = 0;
          for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
          const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
          for (int64_t i = 0; i < n; ++i) yr[i] = w[i] * (xr[i] * inv);
        }
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(1, n)));
}

void rope(ThreadPool& pool, float* x, int64_t n_tokens, int64_t n_head, int64_t head_dim,
          const int32_t* pos, const float* inv_freq) {
  const int64_t half = head_dim / 2;
  pool.parallel_for(n_tokens, [&](int64_t begin, int64_t end) {
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
