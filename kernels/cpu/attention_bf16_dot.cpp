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

// G query rows (a GQA group) against the same keys: each key's row is loaded once for the G rows.
// 16 / G keys x G rows fill the 16 accumulators that one transpose reduces; each accumulator is
// the same chain of VDPBF16PS and reduced by the same tree as in scores<NC>, so every score has
// the bits scores<NC> gives it.   q [G][ldq] bf16, s [G][lds]
template <int NC, int G>
void group_scores(const uint16_t* q, int64_t ldq, const uint16_t* const* k, int64_t n_keys,
                  float scale, float* s, int64_t lds) {
  constexpr int KB = 16 / G;  // keys per transpose
  __m512i qv[G][NC];
  for (int g = 0; g < G; ++g) {
    for (int c = 0; c < NC; ++c) qv[g][c] = _mm512_loadu_si512(q + g * ldq + 32 * c);
  }
  const __m512 vs = _mm512_set1_ps(scale);
  // Lane jj * G + g of the reduced vector is key jj of row g: gathered to lanes g * KB + jj.
  alignas(64) int32_t order[16];
  for (int g = 0; g < G; ++g) {
    for (int jj = 0; jj < KB; ++jj) order[g * KB + jj] = jj * G + g;
  }
  const __m512i by_row = _mm512_load_si512(order);
  int64_t j0 = 0;
  for (; j0 + KB <= n_keys; j0 += KB) {
    __m512 acc[16];
    for (int jj = 0; jj < KB; ++jj) {
      const uint16_t* row = k[j0 + jj];
      __m512i kv[NC];
      for (int c = 0; c < NC; ++c) kv[c] = _mm512_loadu_si512(row + 32 * c);
      for (int g = 0; g < G; ++g) {
        __m512 a = dot(_mm512_setzero_ps(), qv[g][0], kv[0]);
        for (int c = 1; c < NC; ++c) a = dot(a, qv[g][c], kv[c]);
        acc[jj * G + g] = a;
      }
    }
    simd512::transpose16x16(acc);
    for (int w = 8; w > 0; w /= 2) {
      for (int i = 0; i < w; ++i) acc[i] = _mm512_add_ps(acc[i], acc[i + w]);
    }
    alignas(64) float out[16];
    _mm512_store_ps(out, _mm512_mul_ps(_mm512_permutexvar_ps(by_row, acc[0]), vs));
    for (int g = 0; g < G; ++g) {
      for (int jj = 0; jj < KB; ++jj) s[g * lds + j0 + jj] = out[g * KB + jj];
    }
  }
  for (; j0 < n_keys; ++j0) {
    const uint16_t* row = k[j0];
    for (int g = 0; g < G; ++g) {
      __m512 a = dot(_mm512_setzero_ps(), qv[g][0], _mm512_loadu_si512(row));
      for (int c = 1; c < NC; ++c) a = dot(a, qv[g][c], _mm512_loadu_si512(row + 32 * c));
      s[g * lds + j0] = simd512::hsum(a) * scale;
    }
  }
}

}  // namespace

bool attn_scores_group_bf16_dot(const uint16_t* q, int64_t ldq, int64_t group,
                                const uint16_t* const* k, int64_t n_keys, int64_t head_dim,
                                float scale, float* s, int64_t lds) {
  using Fn =
      void (*)(const uint16_t*, int64_t, const uint16_t* const*, int64_t, float, float*, int64_t);
  // The G rows' queries stay in registers: G x head_dim / 32 <= 8.
  Fn fn = nullptr;
  if (head_dim % 32 == 0) {
    switch (group * 16 + head_dim / 32) {
      case 2 * 16 + 1:
        fn = group_scores<1, 2>;
        break;
      case 2 * 16 + 2:
        fn = group_scores<2, 2>;
        break;
      case 2 * 16 + 3:
        fn = group_scores<3, 2>;
        break;
      case 2 * 16 + 4:
        fn = group_scores<4, 2>;
        break;
      case 4 * 16 + 1:
        fn = group_scores<1, 4>;
        break;
      case 4 * 16 + 2:
        fn = group_scores<2, 4>;
        break;
      case 8 * 16 + 1:
        fn = group_scores<1, 8>;
        break;
      default:
        break;
    }
  }
  if (fn == nullptr) return false;
  if (n_keys > 0) fn(q, ldq, k, n_keys, scale, s, lds);
  return true;
}

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
