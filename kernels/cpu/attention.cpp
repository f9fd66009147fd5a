// CPU causal attention against a single sequence's KV cache. Two paths:
//  - few new tokens (decode): per token, the visible keys split over the pool (split-K), every
//    query head served from the same K/V rows block by block (the cache is read front to
//    back once), partial softmaxes merged exactly at the end;
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

constexpr int64_t kTiledMinTokens = 4;  // below this, the split-K decode path
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

// Decode: each token's visible keys are split into one contiguous range per thread (at least
// kMinKeysPerThread keys each). A thread walks its range in blocks of kKeyBlock positions and,
// per block, serves every query head from the same K (then V) rows while they are in cache:
// the KV cache, laid out [position][kv head][head_dim], is read front to back once per token.
// Each thread keeps per head a partial softmax (max, sum) and an unnormalized output; the
// caller merges them (split-K "flash decoding"), which is exact up to f32 rounding.
void attention_decode(const Context& ctx, const KernelTable& kt, const float* q, const float* k,
                      const float* v, const int32_t* pos, const Shape& sh, float* out) {
  constexpr int64_t kKeyBlock = 32, kMinKeysPerThread = 64;
  const int64_t hd = sh.head_dim, n_head = sh.n_head, ld = sh.n_head_kv * hd;
  const int64_t max_keys = sh.n_kv;
  const int64_t n_threads_max = ctx.pool.size();
  // Per thread: scores [n_head, max_keys_per_thread], outputs [n_head, hd], max and sum [n_head].
  const int64_t keys_cap = (max_keys + 15) / 16 * 16;
  const int64_t per_thread = n_head * keys_cap + n_head * hd + 2 * n_head;
  float* scratch = static_cast<float*>(
      ctx.workspace.get(static_cast<size_t>(per_thread * n_threads_max) * sizeof(float)));
  for (int64_t t = 0; t < sh.n_tokens; ++t) {
    const int64_t lo = sh.lo(pos[t]), hi = sh.hi(pos[t]), n_keys = hi - lo + 1;
    const float* qt = q + t * n_head * hd;
    float* ot = out + t * n_head * hd;
    if (n_keys <= 0) {
      std::fill(ot, ot + n_head * hd, 0.0f);
      continue;
    }
    const int nth =
        static_cast<int>(std::clamp<int64_t>(n_keys / kMinKeysPerThread, 1, n_threads_max));
    ctx.pool.run(nth, [&](int thread, int n) {
      float* sc = scratch + thread * per_thread;  // [n_head, keys_cap]
      float* o = sc + n_head * keys_cap;          // [n_head, hd]
      float* mx = o + n_head * hd;                // [n_head]
      float* sum = mx + n_head;                   // [n_head]
      const int64_t j0 = lo + n_keys * thread / n, j1 = lo + n_keys * (thread + 1) / n;
      for (int64_t jb = j0; jb < j1; jb += kKeyBlock) {
        const int64_t nb = std::min(kKeyBlock, j1 - jb);
        for (int64_t h = 0; h < n_head; ++h) {
          kt.attn_scores_row(qt + h * hd, k + jb * ld + (h / sh.group()) * hd, ld, nb, hd, sh.scale,
                             sc + h * keys_cap + (jb - j0));
        }
      }
      for (int64_t h = 0; h < n_head; ++h) {
        mx[h] = kt.max(sc + h * keys_cap, j1 - j0);
        sum[h] = kt.exp_sub_sum(sc + h * keys_cap, mx[h], j1 - j0);
      }
      std::fill(o, o + n_head * hd, 0.0f);
      for (int64_t jb = j0; jb < j1; jb += kKeyBlock) {
        const int64_t nb = std::min(kKeyBlock, j1 - jb);
        for (int64_t h = 0; h < n_head; ++h) {
          kt.attn_pv_row(sc + h * keys_cap + (jb - j0), v + jb * ld + (h / sh.group()) * hd, ld, nb,
                         hd, o + h * hd);
        }
      }
    });
    // Merge the threads' partial softmaxes: out = sum_i e^(m_i - M) o_i / sum_i e^(m_i - M) l_i.
    for (int64_t h = 0; h < n_head; ++h) {
      float m = -INFINITY;
      for (int i = 0; i < nth; ++i)
        m = std::max(m, scratch[i * per_thread + n_head * keys_cap + n_head * hd + h]);
      float total = 0.0f;
      float* oh = ot + h * hd;
      std::fill(oh, oh + hd, 0.0f);
      for (int i = 0; i < nth; ++i) {
        const float* base = scratch + i * per_thread;
        const float w = std::exp(base[n_head * keys_cap + n_head * hd + h] - m);
        total += w * base[n_head * keys_cap + n_head * hd + n_head + h];
        kt.axpy(oh, w, base + n_head * keys_cap + h * hd, hd);
      }
      kt.scale(oh, 1.0f / total, hd);
    }
  }
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
    attention_decode(ctx, kt, q, k, v, pos, sh, out);
  } else {
    attention_tiled(ctx, kt, q, k, v, pos, sh, out);
  }
}

}  // namespace shardlm::cpu
