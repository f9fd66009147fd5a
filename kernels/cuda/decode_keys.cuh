// The inner loop of split-K decode attention, shared by attention_decode.cu (one sequence's
// contiguous cache) and paged_kv.cu (pools through a block table): one warp streams its share of
// a key range for up to kMaxGroup query heads of one kv head, keeping an online softmax per head.
//
// Keys go in chunks of kKeys consecutive positions per warp (warp w of kWarps takes chunks
// w, w + kWarps, ...). All K and V loads of a chunk are issued before any is used, and the
// chunk's scores are reduced together, so a warp has kKeys rows in flight instead of one and
// pays one rescale of its accumulators per chunk instead of one per key. Not the block's merge
// of its warps or the combine over splits (the kernels do those).
#pragma once

#include <cmath>

#include "kernels/cuda/common.cuh"

namespace shardlm::cuda {

constexpr int kDecodeMaxGroup = 8;  // query heads per decode block (attention_plan.cpp agrees)

// Keys per chunk: fewer for wide heads, where a chunk's rows would crowd out the accumulators.
template <int kDPL>
constexpr int decode_chunk_keys() {
  return kDPL <= 4 ? 4 : 2;
}

// q_s [kDecodeMaxGroup][kDPL * 32] (shared; heads >= gc and lanes past head_dim are zero).
// row_of(j): element offset of key j's row for this kv head in k and v. Keys [j0, j1).
// m, l, acc: this lane's running max, sum and output (d = lane + 32 * i) per query head.
template <int kWarps, int kDPL, typename KV, typename RowOf>
__device__ __forceinline__ void decode_stream_keys(
    const float (*q_s)[kDPL * 32], int gc, const KV* __restrict__ k, const KV* __restrict__ v,
    RowOf row_of, int64_t j0, int64_t j1, int head_dim, float scale, int warp, int lane,
    float (&m)[kDecodeMaxGroup], float (&l)[kDecodeMaxGroup], float (&acc)[kDecodeMaxGroup][kDPL]) {
  constexpr int kKeys = decode_chunk_keys<kDPL>();
  for (int64_t base = j0 + int64_t{warp} * kKeys; base < j1; base += int64_t{kWarps} * kKeys) {
    float kk[kKeys][kDPL], vv[kKeys][kDPL];
#pragma unroll
    for (int u = 0; u < kKeys; ++u) {
      const bool in = base + u < j1;
      const int64_t row = in ? row_of(base + u) : 0;
#pragma unroll
      for (int i = 0; i < kDPL; ++i) {
        const int d = lane + 32 * i;
        kk[u][i] = in && d < head_dim ? to_f32(k[row + d]) : 0.0f;
        vv[u][i] = in && d < head_dim ? to_f32(v[row + d]) : 0.0f;
      }
    }
#pragma unroll
    for (int g = 0; g < kDecodeMaxGroup; ++g) {
      if (g < gc) {  // uniform over the block
        float s[kKeys];
#pragma unroll
        for (int u = 0; u < kKeys; ++u) {
          s[u] = 0.0f;
#pragma unroll
          for (int i = 0; i < kDPL; ++i) s[u] = fmaf(q_s[g][lane + 32 * i], kk[u][i], s[u]);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
          for (int u = 0; u < kKeys; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], o);
        }
        float m_new = m[g];
#pragma unroll
        for (int u = 0; u < kKeys; ++u) {
          s[u] = base + u < j1 ? s[u] * scale : -INFINITY;
          m_new = fmaxf(m_new, s[u]);
        }
        // The chunk's first key is always in range, so m_new is finite here.
        const float corr = expf(m[g] - m_new);  // 0 while m[g] is still -inf
        float p[kKeys], p_sum = 0.0f;
#pragma unroll
        for (int u = 0; u < kKeys; ++u) {
          p[u] = expf(s[u] - m_new);  // 0 for keys past j1
          p_sum += p[u];
        }
        l[g] = fmaf(l[g], corr, p_sum);
#pragma unroll
        for (int i = 0; i < kDPL; ++i) {
          float a = acc[g][i] * corr;
#pragma unroll
          for (int u = 0; u < kKeys; ++u) a = fmaf(p[u], vv[u][i], a);
          acc[g][i] = a;
        }
        m[g] = m_new;
      }
    }
  }
}

}  // namespace shardlm::cuda
