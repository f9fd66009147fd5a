// CPU causal attention against a single sequence's KV cache: (token, head) pairs split across
// the pool; per pair, scores over the visible key range with the ISA's dot product, a
// vectorized exp for the softmax, and the weighted sum of V rows with axpy. Scratch (scores,
// accumulator) comes from the workspace, one slice per thread.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/kernel_table.h"

namespace shardlm::cpu {

void attention(const Context& ctx, const float* q, const float* k, const float* v,
               const int32_t* pos, int64_t n_tokens, int64_t n_kv, int64_t n_head,
               int64_t n_head_kv, int64_t head_dim, int64_t sliding_window, float scale,
               float* out) {
  const KernelTable& kt = kernel_table(ctx.isa);
  const int64_t group = n_head / n_head_kv;
  const int64_t n_pairs = n_tokens * n_head;
  const int n_threads = static_cast<int>(std::min<int64_t>(ctx.pool.size(), n_pairs));
  const int64_t slice = (n_kv + 15) / 16 * 16;  // floats of scores per thread
  float* scratch = static_cast<float*>(
      ctx.workspace.get(static_cast<size_t>(slice * n_threads) * sizeof(float)));
  ctx.pool.run(n_threads, [&](int thread, int nth) {
    float* score = scratch + thread * slice;
    const int64_t begin = n_pairs * thread / nth, end = n_pairs * (thread + 1) / nth;
    for (int64_t th = begin; th < end; ++th) {
      const int64_t t = th / n_head;
      const int64_t h = th % n_head;
      const int64_t kvh = h / group;
      const int64_t hi = std::min<int64_t>(pos[t], n_kv - 1);
      const int64_t lo = sliding_window > 0 ? std::max<int64_t>(0, pos[t] - sliding_window + 1) : 0;
      const float* qv = q + th * head_dim;
      float* o = out + th * head_dim;
      float max_s = -INFINITY;
      for (int64_t j = lo; j <= hi; ++j) {
        const float s = kt.dot(qv, k + (j * n_head_kv + kvh) * head_dim, head_dim) * scale;
        score[j] = s;
        max_s = std::max(max_s, s);
      }
      std::fill(o, o + head_dim, 0.0f);
      if (hi < lo) continue;
      const float sum = kt.exp_sub_sum(score + lo, max_s, hi - lo + 1);
      for (int64_t j = lo; j <= hi; ++j)
        kt.axpy(o, score[j], v + (j * n_head_kv + kvh) * head_dim, head_dim);
      kt.scale(o, 1.0f / sum, head_dim);
    }
  });
}

}  // namespace shardlm::cpu
