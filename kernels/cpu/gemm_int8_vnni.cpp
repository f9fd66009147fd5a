// The int8 VNNI GEMM's packing and tile (see gemm_int8_vnni.h). Compiled with AVX-512 VNNI flags.
// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (GCC bug 105593); silenced
// for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/cpu/gemm_int8_vnni.h"

#include <immintrin.h>

#include <cstring>

#include "runtime/core/quant.h"

namespace shardlm::cpu {

void int8_gemm_pack_w(DType dtype, const uint8_t* w, int64_t n_in, int64_t o, int64_t n_rows,
                      int64_t k0, int64_t kc, uint8_t* wp, float* ws) {
  constexpr int64_t nr = kInt8GemmNr;
  const size_t rb = row_bytes(dtype, n_in);
  for (int64_t j = 0; j < nr; ++j) {
    if (j >= n_rows) {
      for (int64_t g = 0; g < kc / 4; ++g) std::memset(wp + (g * nr + j) * 4, 0, 4);
      for (int64_t b = 0; b < kc / kQuantBlock; ++b) ws[b * nr + j] = 0.0f;
      continue;
    }
    const uint8_t* row = w + static_cast<size_t>(o + j) * rb;
    for (int64_t b = 0; b < kc / kQuantBlock; ++b) {
      const int64_t blk = k0 / kQuantBlock + b;
      uint8_t q[kQuantBlock];  // stored values of the block, one per byte
      if (is_int4(dtype)) {
        unpack_block_int4(row, n_in, blk, q);
      } else {
        unpack_block_int8(row, n_in, blk, q);
      }
      for (int64_t g = 0; g < kQuantBlock / 4; ++g)
        std::memcpy(wp + ((b * kQuantBlock / 4 + g) * nr + j) * 4, q + 4 * g, 4);
      uint16_t h;
      std::memcpy(&h, row + quant_scale_at(dtype, n_in, blk), 2);
      ws[b * nr + j] = f16_to_f32(h);
    }
  }
}

void int8_gemm_tile(const int8_t* xs, int64_t ldx, const float* sx, const int32_t* corr,
                    int64_t ldb, const uint8_t* wp, const float* ws, int64_t nb, float* c,
                    int64_t ldc, int m_valid, int n_valid, bool accumulate, const float* bias) {
  constexpr int kMr = static_cast<int>(kInt8GemmMr);
  constexpr int64_t nr = kInt8GemmNr;
  // Rows past m_valid repeat the last valid one (their results are not stored).
  const int8_t* xr[kMr];
  const float* sxr[kMr];
  const int32_t* cr[kMr];
  for (int m = 0; m < kMr; ++m) {
    const int mm = m < m_valid ? m : m_valid - 1;
    xr[m] = xs + mm * ldx;
    sxr[m] = sx + mm * ldb;
    cr[m] = corr + mm * ldb;
  }
  __m512 acc[kMr][2];
  for (int m = 0; m < kMr; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512i ai[kMr][2];
    for (int m = 0; m < kMr; ++m) ai[m][0] = ai[m][1] = _mm512_set1_epi32(-cr[m][b]);
    const uint8_t* wb = wp + b * (kQuantBlock / 4) * nr * 4;
    for (int64_t g = 0; g < kQuantBlock / 4; ++g) {
      const __m512i w0 = _mm512_loadu_si512(wb + g * nr * 4);
      const __m512i w1 = _mm512_loadu_si512(wb + g * nr * 4 + 64);
      for (int m = 0; m < kMr; ++m) {
        int32_t xv;
        std::memcpy(&xv, xr[m] + b * kQuantBlock + g * 4, 4);
        const __m512i xb = _mm512_set1_epi32(xv);
        ai[m][0] = _mm512_dpbusd_epi32(ai[m][0], w0, xb);
        ai[m][1] = _mm512_dpbusd_epi32(ai[m][1], w1, xb);
      }
    }
    const __m512 s0 = _mm512_loadu_ps(ws + b * nr), s1 = _mm512_loadu_ps(ws + b * nr + 16);
    for (int m = 0; m < kMr; ++m) {
      const __m512 d = _mm512_set1_ps(sxr[m][b]);
      acc[m][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[m][0]), _mm512_mul_ps(s0, d), acc[m][0]);
      acc[m][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[m][1]), _mm512_mul_ps(s1, d), acc[m][1]);
    }
  }
  const __mmask16 m0 = static_cast<__mmask16>(n_valid >= 16 ? 0xFFFF : (1u << n_valid) - 1);
  const __mmask16 m1 =
      static_cast<__mmask16>(n_valid >= 32 ? 0xFFFF : n_valid <= 16 ? 0 : (1u << (n_valid - 16)) - 1);
  for (int m = 0; m < m_valid; ++m) {
    float* cm = c + m * ldc;
    __m512 base0 = _mm512_setzero_ps(), base1 = _mm512_setzero_ps();
    if (accumulate) {
      base0 = _mm512_maskz_loadu_ps(m0, cm);
      base1 = _mm512_maskz_loadu_ps(m1, cm + 16);
    } else if (bias != nullptr) {
      base0 = _mm512_maskz_loadu_ps(m0, bias);
      base1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    _mm512_mask_storeu_ps(cm, m0, _mm512_add_ps(base0, acc[m][0]));
    _mm512_mask_storeu_ps(cm + 16, m1, _mm512_add_ps(base1, acc[m][1]));
  }
}

}  // namespace shardlm::cpu
