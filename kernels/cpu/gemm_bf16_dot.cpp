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

namespace {

// 16 f32 values rounded to bf16 (nearest even, as round_to_bf16_avx512), one per 32-bit lane.
inline __m512i round_lanes(__m512 v) {
  const __m512i b = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  return _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)),
                           16);
}

}  // namespace

void bf16_gemm_pack_x(const float* x, int64_t n_tokens, int64_t n_in, int64_t ldx, int64_t mp_begin,
                      int64_t mp_end, uint32_t* xp) {
  static_assert(kMr <= 16, "a token panel is at most one 16x16 transpose wide");
  const int64_t n_pairs = bf16_pairs(n_in);
  const int64_t n_panels = (n_tokens + kMr - 1) / kMr, kb = bf16_gemm_block_pairs(n_in);
  constexpr __mmask16 kPanelLanes = (1u << kMr) - 1;
  for (int64_t mp = mp_begin; mp < mp_end; ++mp) {
    // 16 pairs (32 elements) of the panel's tokens at a time: rounded into a row of 16 pairs per
    // token, transposed so that each pair's kMr tokens are one contiguous run of xp.
    for (int64_t p = 0; p < n_pairs; p += 16) {
      const int64_t k = 2 * p;
      const __mmask16 m0 = simd512::tail_mask16(n_in - k),
                      m1 = n_in - k > 16 ? simd512::tail_mask16(n_in - k - 16) : 0;
      __m512 r[16];
      for (int64_t m = 0; m < 16; ++m) {
        const int64_t t = mp * kMr + m;
        if (m >= kMr || t >= n_tokens) {
          r[m] = _mm512_setzero_ps();
          continue;
        }
        const float* src = x + t * ldx + k;
        const __m256i lo = _mm512_cvtepi32_epi16(round_lanes(_mm512_maskz_loadu_ps(m0, src)));
        const __m256i hi = _mm512_cvtepi32_epi16(round_lanes(_mm512_maskz_loadu_ps(m1, src + 16)));
        r[m] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
      }
      simd512::transpose16x16(r);  // r[i] = pair p + i of tokens 0..15
      const int64_t pn = n_pairs - p < 16 ? n_pairs - p : 16;
      for (int64_t i = 0; i < pn; ++i) {
        const int64_t pi = p + i;
        _mm512_mask_storeu_ps(xp + ((pi / kb) * n_panels + mp) * kb * kMr + (pi % kb) * kMr,
                              kPanelLanes, r[i]);
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

void bf16_gemm_pack_w_kmajor(const uint16_t* w, int64_t n_in, int64_t ld, int64_t o, int64_t n_cols,
                             int64_t p0, int64_t pc, uint32_t* wp) {
  // Interleaving the 16-bit elements of rows 2p and 2p + 1 pairs them within each 128-bit lane
  // (unpacklo: columns 0-3 of every lane of 8, unpackhi: 4-7); two 2-source permutes put the
  // 32 pairs back in column order.
  const __m512i lo_idx = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i hi_idx =
      _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const __mmask32 m = simd512::tail_mask32(n_cols);
  for (int64_t p = 0; p < pc; ++p) {
    const int64_t k = 2 * (p0 + p);
    const __m512i r0 =
        k < n_in ? _mm512_maskz_loadu_epi16(m, w + k * ld + o) : _mm512_setzero_si512();
    const __m512i r1 =
        k + 1 < n_in ? _mm512_maskz_loadu_epi16(m, w + (k + 1) * ld + o) : _mm512_setzero_si512();
    const __m512i lo = _mm512_unpacklo_epi16(r0, r1), hi = _mm512_unpackhi_epi16(r0, r1);
    _mm512_storeu_si512(wp + p * kNr, _mm512_permutex2var_epi32(lo, lo_idx, hi));
    _mm512_storeu_si512(wp + p * kNr + 16, _mm512_permutex2var_epi32(lo, hi_idx, hi));
  }
}

void bf16_gemm_tile(const uint32_t* xp, const uint32_t* wp, int64_t pc, const float* c_in,
                    const float* bias, float* c, int64_t ldc, int m_valid, int n_valid) {
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
  if (!c_in && bias) {
    b0 = _mm512_maskz_loadu_ps(m0, bias);
    b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
  for (int m = 0; m < m_valid; ++m) {
    if (c_in) {
      b0 = _mm512_loadu_ps(c_in + m * kNr);
      b1 = _mm512_loadu_ps(c_in + m * kNr + 16);
    }
    float* cr = c + m * ldc;
    _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(b0, acc[m][0]));
    _mm512_mask_storeu_ps(cr + 16, m1, _mm512_add_ps(b1, acc[m][1]));
  }
}

}  // namespace shardlm::cpu
