// CPU causal attention against a single sequence's KV cache. Two paths:
//  - few new tokens (decode): (token, head) pairs split across the pool; per pair, scores over
//    the visible keys with the ISA's dot product, a vectorized exp, and axpy over V rows;
//  - many new tokens (prefill): tiles of kQueryBlock tokens x the query heads of one kv head
//    (GQA groups share K/V), keys transposed once per kv head and thread, scores and P.V as
//    register-blocked micro-kernels (KernelTable::attn_scores / attn_pv), exact softmax per row.
// Both accumulate in f32; scratch comes from the workspace, one slice per thread.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/kernel_table.h"

namespace shardlm::cpu {

namespace {

constexpr int64_t kTiledMinTokens = 4;  // below this, one (token, head) pair at a time
constexpr int64_t kQueryBlock = 32;     // tokens per prefill tile

struct Shape {
  int64_t n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window;
  float scale;
  int64_t group() const { return n_head / n_head_kv; }
  // Visible keys [lo, hi] of a query at position p.
  int64_t hi(int32_t p) const { return std::min<int64_t>(p, n_kv - 1); }
  int64_t lo(int32_t p) const {
    return sliding_window > 0 ? std::max<int64_t>(0, p - sliding_window + 1) : 0;
  }
};

void attention_pairs(const Context& ctx, const KernelTable& kt, const float* q, const float* k,
                     const float* v, const int32_t* pos, const Shape& sh, float* out) {
  const int64_t n_pairs = sh.n_tokens * sh.n_head, hd = sh.head_dim;
  const int n_threads = static_cast<int>(std::min<int64_t>(ctx.pool.size(), n_pairs));
  const int64_t slice = (sh.n_kv + 15) / 16 * 16;  // scores per thread
  float* scratch = static_cast<float*>(
      ctx.workspace.get(static_cast<size_t>(slice * n_threads) * sizeof(float)));
  ctx.pool.run(n_threads, [&](int thread, int nth) {
    float* score = scratch + thread * slice;
    const int64_t begin = n_pairs * thread / nth, end = n_pairs * (thread + 1) / nth;
    for (int64_t th = begin; th < end; ++th) {
      const int64_t t = th / sh.n_head, h = th % sh.n_head, kvh = h / sh.group();
      const int64_t lo = sh.lo(pos[t]), hi = sh.hi(pos[t]);
      const float* qv = q + th * hd;
      float* o = out + th * hd;
      std::fill(o, o + hd, 0.0f);
      if (hi < lo) continue;
      float max_s = -INFINITY;
      for (int64_t j = lo; j <= hi; ++j) {
        score[j] = kt.dot(qv, k + (j * sh.n_head_kv + kvh) * hd, hd) * sh.scale;
        max_s = std::max(max_s, score[j]);
      }
      const float sum = kt.exp_sub_sum(score + lo, max_s, hi - lo + 1);
      for (int64_t j = lo; j <= hi; ++j)
        kt.axpy(o, score[j], v + (j * sh.n_head_kv + kvh) * hd, hd);
      kt.scale(o, 1.0f / sum, hd);
    }
  });
}

void attention_tiled(const Context& ctx, const KernelTable& kt, const float* q, const float* k,
                     const float* v, const int32_t* pos, const Shape& sh, float* out) {
  const int64_t hd = sh.head_dim, group = sh.group();
  const int64_t n_qb = (sh.n_tokens + kQueryBlock - 1) / kQueryBlock;
  const int64_t n_tasks = sh.n_head_kv * n_qb;  // kv-head-major: a thread keeps its K transpose
  int64_t key_end = 0;                          // keys any query of this call can see
  for (int64_t t = 0; t < sh.n_tokens; ++t) key_end = std::max(key_end, sh.hi(pos[t]) + 1);
  const int64_t ldk = (key_end + 15) / 16 * 16;
  const int64_t rows = kQueryBlock * group;
  const int64_t per_thread = hd * ldk + rows * ldk + 2 * rows * hd + rows;
  const int n_threads = static_cast<int>(std::min<int64_t>(ctx.pool.size(), n_tasks));
  float* scratch = static_cast<float*>(
      ctx.workspace.get(static_cast<size_t>(per_thread * n_threads) * sizeof(float)));
  ctx.pool.run(n_threads, [&](int thread, int nth) {
    float* ktr = scratch + thread * per_thread;  // [hd, ldk] this kv head's keys, transposed
    float* s = ktr + hd * ldk;                   // [rows, ldk] scores, then probabilities
    float* qb = s + rows * ldk;                  // [rows, hd] gathered queries
    float* ob = qb + rows * hd;                  // [rows, hd] unnormalized outputs
    float* inv = ob + rows * hd;                 // [rows] 1 / softmax denominators
    int64_t have = -1;
    const int64_t begin = n_tasks * thread / nth, end = n_tasks * (thread + 1) / nth;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t kvh = task / n_qb, t0 = (task % n_qb) * kQueryBlock;
      const int64_t t1 = std::min(sh.n_tokens, t0 + kQueryBlock);
      if (kvh != have) {  // 16 keys at a time: each store fills a whole cache line of ktr
        for (int64_t j0 = 0; j0 < key_end; j0 += 16) {
          const int64_t nj = std::min<int64_t>(16, key_end - j0);
          for (int64_t d = 0; d < hd; ++d) {
            for (int64_t jj = 0; jj < nj; ++jj) {
              ktr[d * ldk + j0 + jj] = k[((j0 + jj) * sh.n_head_kv + kvh) * hd + d];
            }
          }
        }
        have = kvh;
      }
      int64_t klo = key_end, khi = -1;
      for (int64_t t = t0; t < t1; ++t) {
        klo = std::min(klo, sh.lo(pos[t]));
        khi = std::max(khi, sh.hi(pos[t]));
      }
      const int64_t n_rows = (t1 - t0) * group, n_keys = khi - klo + 1;
      for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t t = t0 + r / group, h = kvh * group + r % group;
        std::copy(q + (t * sh.n_head + h) * hd, q + (t * sh.n_head + h + 1) * hd, qb + r * hd);
      }
      kt.attn_scores(qb, hd, n_rows, ktr + klo, ldk, n_keys, hd, sh.scale, s, ldk);
      for (int64_t r = 0; r < n_rows; ++r) {
        const int32_t p = pos[t0 + r / group];
        const int64_t lo = sh.lo(p) - klo, hi = sh.hi(p) - klo;
        float* sr = s + r * ldk;
        std::fill(sr, sr + lo, 0.0f);  // masked keys weigh nothing
        std::fill(sr + hi + 1, sr + n_keys, 0.0f);
        const float max_s = kt.max(sr + lo, hi - lo + 1);
        inv[r] = 1.0f / kt.exp_sub_sum(sr + lo, max_s, hi - lo + 1);
      }
      kt.attn_pv(s, ldk, n_rows, v + (klo * sh.n_head_kv + kvh) * hd, sh.n_head_kv * hd, n_keys, hd,
                 ob, hd);
      for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t t = t0 + r / group, h = kvh * group + r % group;
        float* o = out + (t * sh.n_head + h) * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] = ob[r * hd + d] * inv[r];
      }
    }
  });
}

}  // namespace

void attention(const Context& ctx, const float* q, const float* k, const float* v,
               const int32_t* pos, int64_t n_tokens, int64_t n_kv, int64_t n_head,
               int64_t n_head_kv, int64_t head_dim, int64_t sliding_window, float scale,
               float* out) {
  if (n_tokens <= 0) return;
  const KernelTable& kt = kernel_table(ctx.isa);
  const Shape sh{n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window, scale};
  if (n_tokens < kTiledMinTokens) {
    attention_pairs(ctx, kt, q, k, v, pos, sh, out);
  } else {
    attention_tiled(ctx, kt, q, k, v, pos, sh, out);
  }
}

}  // namespace shardlm::cpu
