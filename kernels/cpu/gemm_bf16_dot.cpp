// VDPBF16PS GEMM pieces (AVX-512 BF16), see gemm_bf16_dot.h. The layout follows the f32 GEMM
// of table_avx512.cpp with 32-bit k pairs in place of f32 elements: a bf16 weight row is already
// a row of pairs, so packing a weight panel is the same 16x16 transpose of 32-bit lanes, without
// widening, and each instruction does two k steps of 16 outputs.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/cpu/gemm_bf16_dot.h"

#include <immintrin.h>

#include "kernels/cpu/gemv_bf16_dot.h"
#include "kernels/cpu/simd_avx512.h"

namespace shardlm::cpu {

namespace {

constexpr int64_t kMr = kBf16GemmMr, kNr = kBf16GemmNr;
// Bytes ahead each of the 16 rows a weight block is read from is prefetched: the rows are 16
// streams at the row stride, which the hardware prefetcher does not run far enough ahead on.
// 512 x 2048 -> 16384: 43.5-47.8 ms without, 40.4-41.3 with 256 (Zen 5; 512 and 1024 no better).
constexpr int kPackPrefetchBytes = 256;

inline __m512 dot(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh&>(a), reinterpret_cast<__m512bh&>(b));
}

}  // namespace

void bf16_gemm_pack_x(const float* x, int64_t n_tokens, int64_t n_in, int64_t mp_begin,
                      int64_t mp_end, uint32_t* xp) {
  const int64_t n_pairs = bf16_pairs(n_in);
  constexpr int64_t kChunk = 256;  // elements rounded at a time (128 pairs)
  alignas(64) uint16_t row[kChunk];
  for (int64_t mp = mp_begin; mp < mp_end; ++mp) {
    uint32_t* dst = xp + mp * n_pairs * kMr;
    for (int64_t m = 0; m < kMr; ++m) {
      const int64_t t = mp * kMr + m;
      if (t >= n_tokens) {
        for (int64_t p = 0; p < n_pairs; ++p) dst[p * kMr + m] = 0;
        continue;
      }
      for (int64_t k0 = 0; k0 < n_in; k0 += kChunk) {
        const int64_t kn = n_in - k0 < kChunk ? n_in - k0 : kChunk;
        round_to_bf16_avx512(x + t * n_in + k0, kn, row);
        if (kn % 2 != 0) row[kn] = 0;
        for (int64_t i = 0; i < (kn + 1) / 2; ++i) {
          dst[(k0 / 2 + i) * kMr + m] =
              static_cast<uint32_t>(row[2 * i]) | static_cast<uint32_t>(row[2 * i + 1]) << 16;
        }
      }
    }
  }
}

void bf16_gemm_pack_w(const uint16_t* w, int64_t n_in, int64_t o, int64_t n_rows, int64_t p0,
                      int64_t pc, uint32_t* wp) {
  for (int64_t jb = 0; jb < kNr; jb += 16) {
    for (int64_t p = 0; p < pc; p += 16) {
      // 16 pairs (32 elements) of each row from element 2 * (p0 + p), masked at the row's end.
      const int64_t k = 2 * (p0 + p);
      const __mmask32 m = simd512::tail_mask32(n_in - k);
      __m512 r[16];
      for (int j = 0; j < 16; ++j) {
        if (jb + j < n_rows) {
          _mm_prefetch(
              reinterpret_cast<const char*>(w + (o + jb + j) * n_in + k) + kPackPrefetchBytes,
              _MM_HINT_T0);
        }
        r[j] = jb + j < n_rows
                   ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, w + (o + jb + j) * n_in + k))
                   : _mm512_setzero_ps();
      }
      simd512::transpose16x16(r);
      const int64_t pn = pc - p < 16 ? pc - p : 16;
      for (int64_t i = 0; i < pn; ++i) {
        _mm512_storeu_ps(reinterpret_cast<float*>(wp + (p + i) * kNr + jb), r[i]);
      }
    }
  }
}

void bf16_gemm_tile(const uint32_t* xp, const uint32_t* wp, int64_t pc, float* c, int64_t ldc,
                    int m_valid, int n_valid, bool accumulate, const float* bias) {
  __m512 acc[kMr][2];
  for (int m = 0; m < kMr; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pc; ++p) {
    const __m512i w0 = _mm512_loadu_si512(wp + p * kNr), w1 = _mm512_loadu_si512(wp + p * kNr + 16);
    const uint32_t* xk = xp + p * kMr;
    for (int m = 0; m < kMr; ++m) {
      const __m512i xv = _mm512_set1_epi32(static_cast<int>(xk[m]));
      acc[m][0] = dot(acc[m][0], xv, w0);
      acc[m][1] = dot(acc[m][1], xv, w1);
    }
  }
  const __mmask16 m0 = simd512::tail_mask16(n_valid),
                  m1 = n_valid > 16 ? simd512::tail_mask16(n_valid - 16) : 0;
  __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
  if (!accumulate && bias) {
    b0 = _mm512_maskz_loadu_ps(m0, bias);
    b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
  for (int m = 0; m < m_valid; ++m) {
    float* cr = c + m * ldc;
    if (accumulate) {
      b0 = _mm512_maskz_loadu_ps(m0, cr);
      b1 = _mm512_maskz_loadu_ps(m1, cr + 16);
    }
    _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(b0, acc[m][0]));
    _mm512_mask_storeu_ps(cr + 16, m1, _mm512_add_ps(b1, acc[m][1]));
  }
}

}  // namespace shardlm::cpu
