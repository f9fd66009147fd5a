// The AVX-512 GEMV for int8 block-quantized weights (compiled with AVX-512 flags; picked at run
// time by gemv_int8). Four weight rows stream side by side; each block of 32 int8 values is
// widened to f32 once, scaled, and multiplied with up to four tokens' activations from L1.
// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_*
// placeholders; GCC bug 105593, fixed in GCC 13). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemv_int8.h"
#include "kernels/cpu/gemv_int8_blocks.h"
#include "runtime/core/dtype.h"

namespace shardlm::cpu {

namespace {

// 16 stored bytes (q + 128) as q's int8 bits: xor 0x80.
inline __m128i load_q16(const uint8_t* p) {
  return _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), _mm_set1_epi8(-128));
}

constexpr int kRows = 4;    // rows streamed together
constexpr int kTokens = 4;  // tokens per pass over the rows

template <int T>
void rows_pass(const float* x, int64_t n_in, const uint8_t* const* rows, float (*out)[kTokens]) {
  __m512 acc[kRows][T];
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const int64_t n_blocks = n_in / kQuantBlock;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t k = b * kQuantBlock;
    __m512 xa[T], xb[T];
    for (int t = 0; t < T; ++t) {
      xa[t] = _mm512_loadu_ps(x + t * n_in + k);
      xb[t] = _mm512_loadu_ps(x + t * n_in + k + 16);
    }
    for (int r = 0; r < kRows; ++r) {
      const uint8_t* row = rows[r];
      uint16_t h;
      std::memcpy(&h, row + n_in + b * 2, 2);
      const __m512 d = _mm512_set1_ps(_cvtsh_ss(h));
      const __m128i q = load_q16(row + k);
      const __m128i q2 = load_q16(row + k + 16);
      const __m512 w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d);
      const __m512 w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q2)), d);
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm512_fmadd_ps(w0, xa[t], acc[r][t]);
        acc[r][t] = _mm512_fmadd_ps(w1, xb[t], acc[r][t]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < T; ++t) out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

}  // namespace

void gemv_int8_avx512(const float* x, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                      int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  gemv_row_blocks<kRows, kTokens>(
      w, row_bytes(DType::kInt8, n_in), n_tokens, o_begin, o_end, bias, y, ldy,
      [&](int nt, int64_t t0, const uint8_t* const* rows, float(*out)[kTokens]) {
        const float* xt = x + t0 * n_in;
        switch (nt) {
          case 1:
            rows_pass<1>(xt, n_in, rows, out);
            break;
          case 2:
            rows_pass<2>(xt, n_in, rows, out);
            break;
          case 3:
            rows_pass<3>(xt, n_in, rows, out);
            break;
          default:
            rows_pass<4>(xt, n_in, rows, out);
            break;
        }
      });
}

void dequantize_blocks_avx512(const uint8_t* row, int64_t n_in, int64_t k0, int64_t kc,
                              float* out) {
  for (int64_t k = k0; k < k0 + kc; k += kQuantBlock) {
    uint16_t h;
    std::memcpy(&h, row + n_in + k / kQuantBlock * 2, 2);
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(h));
    const __m128i q0 = load_q16(row + k);
    const __m128i q1 = load_q16(row + k + 16);
    _mm512_storeu_ps(out + (k - k0),
                     _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
    _mm512_storeu_ps(out + (k - k0) + 16,
                     _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
  }
}

}  // namespace shardlm::cpu
