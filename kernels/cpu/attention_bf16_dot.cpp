// attn_scores_row_bf16_dot (attention_bf16_dot.h): per key, head_dim / 32 VDPBF16PS into one
// accumulator; 16 keys' accumulators are reduced together by one 16x16 transpose and 15 adds, as
// the widening scores loop of table_avx512.cpp does.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/cpu/attention_bf16_dot.h"

#include <immintrin.h>

#include "kernels/cpu/simd_avx512.h"

namespace shardlm::cpu {

namespace {

inline __m512 dot(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh&>(a), reinterpret_cast<__m512bh&>(b));
}

template <int NC>
void scores(const uint16_t* q, const uint16_t* const* k, int64_t n_keys, float scale, float* s,
            bool prefetch) {
  __m512i qv[NC];
  for (int c = 0; c < NC; ++c) qv[c] = _mm512_loadu_si512(q + 32 * c);
  const __m512 vs = _mm512_set1_ps(scale);
  int64_t j0 = 0;
  for (; j0 + 16 <= n_keys; j0 += 16) {
    __m512 acc[16];
    for (int jj = 0; jj < 16; ++jj) {
      // The next 16 keys' rows, which a paged pool keeps a whole token (every KV head) apart:
      // too far apart for the hardware prefetcher to follow.
      if (prefetch && j0 + 16 + jj < n_keys) {
        for (int c = 0; c < NC; ++c) {
          _mm_prefetch(reinterpret_cast<const char*>(k[j0 + 16 + jj] + 32 * c), _MM_HINT_T0);
        }
      }
      const uint16_t* row = k[j0 + jj];
      __m512 a = dot(_mm512_setzero_ps(), qv[0], _mm512_loadu_si512(row));
      for (int c = 1; c < NC; ++c) a = dot(a, qv[c], _mm512_loadu_si512(row + 32 * c));
      acc[jj] = a;
    }
    simd512::transpose16x16(acc);
    for (int w = 8; w > 0; w /= 2) {
      for (int jj = 0; jj < w; ++jj) acc[jj] = _mm512_add_ps(acc[jj], acc[jj + w]);
    }
    _mm512_storeu_ps(s + j0, _mm512_mul_ps(acc[0], vs));
  }
  for (; j0 < n_keys; ++j0) {
    const uint16_t* row = k[j0];
    __m512 a = dot(_mm512_setzero_ps(), qv[0], _mm512_loadu_si512(row));
    for (int c = 1; c < NC; ++c) a = dot(a, qv[c], _mm512_loadu_si512(row + 32 * c));
    s[j0] = simd512::hsum(a) * scale;
  }
}

}  // namespace

void attn_scores_row_bf16_dot(const uint16_t* q, const uint16_t* const* k, int64_t n_keys,
                              int64_t head_dim, float scale, float* s, bool prefetch) {
  switch (head_dim / 32) {
    case 1:
      return scores<1>(q, k, n_keys, scale, s, prefetch);
    case 2:
      return scores<2>(q, k, n_keys, scale, s, prefetch);
    case 3:
      return scores<3>(q, k, n_keys, scale, s, prefetch);
    case 4:
      return scores<4>(q, k, n_keys, scale, s, prefetch);
    case 5:
      return scores<5>(q, k, n_keys, scale, s, prefetch);
    case 6:
      return scores<6>(q, k, n_keys, scale, s, prefetch);
    case 7:
      return scores<7>(q, k, n_keys, scale, s, prefetch);
    default:
      return scores<8>(q, k, n_keys, scale, s, prefetch);
  }
}

}  // namespace shardlm::cpu
