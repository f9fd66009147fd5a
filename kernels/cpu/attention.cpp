// CPU causal attention against a single sequence's KV cache: (token, head) pairs split across
// the pool; scores over the visible key range only, softmax in f32, weighted sum of V.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/vec.h"

namespace shardlm::cpu {

void attention(ThreadPool& pool, const float* q, const float* k, const float* v, const int32_t* pos,
               int64_t n_tokens, int64_t n_kv, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
               int64_t sliding_window, float scale, float* out) {
  const int64_t group = n_head / n_head_kv;
  pool.parallel_for(n_tokens * n_head, [&](int64_t begin, int64_t end) {
    std::vector<float> score(static_cast<size_t>(n_kv));
    std::vector<float> acc(static_cast<size_t>(head_dim));
    for (int64_t th = begin; th < end; ++th) {
      const int64_t t = th / n_head;
      const int64_t h = th % n_head;
      const int64_t kvh = h / group;
      const int64_t hi = std::min<int64_t>(pos[t], n_kv - 1);
      const int64_t lo = sliding_window > 0 ? std::max<int64_t>(0, pos[t] - sliding_window + 1) : 0;
      const float* qv = q + th * head_dim;
      float max_s = -INFINITY;
      for (int64_t j = lo; j <= hi; ++j) {
        const float s = vec::dot(qv, k + (j * n_head_kv + kvh) * head_dim, head_dim) * scale;
        score[j] = s;
        max_s = std::max(max_s, s);
      }
      float sum = 0.0f;
      for (int64_t j = lo; j <= hi; ++j) {
        score[j] = std::exp(score[j] - max_s);
        sum += score[j];
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = lo; j <= hi; ++j) {
        const float p = score[j];
        const float* vv = v + (j * n_head_kv + kvh) * head_dim;
        for (int64_t i = 0; i < head_dim; ++i) acc[i] += p * vv[i];
      }
      const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
      float* o = out + th * head_dim;
      for (int64_t i = 0; i < head_dim; ++i) o[i] = acc[i] * inv;
    }
  });
}

}  // namespace shardlm::cpu
