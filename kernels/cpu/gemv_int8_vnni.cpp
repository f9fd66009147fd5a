// The AVX-512 VNNI GEMV for int8 weights with int8 activations (compiled with AVX-512 VNNI
// flags; picked at run time by matmul.cpp when int8_dot_supported()). Activations come quantized
// like weight rows (quantize_row_int8: int8 values, one f16 scale per 32). 64 inputs at a time:
// VPDPBUSD multiplies |w| (unsigned) with x carrying w's sign, so each 32-bit lane sums 4 exact
// integer products; lanes 0-7 hold one block of 32, lanes 8-15 the next, and each half is scaled
// by its blocks' weight scale times activation scale before the f32 accumulation.
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
#include "runtime/core/dtype.h"

namespace shardlm::cpu {

namespace {

constexpr int kRows = 4;
constexpr int kTokens = 4;

// The scales of blocks b and b + 1 (only b when !both) spread over lanes 0-7 and 8-15.
inline __m512 scale_pair(const uint8_t* scales, int64_t b, bool both) {
  uint16_t lo, hi = 0;  // fixed-size copies: a variable length would compile to a byte loop
  std::memcpy(&lo, scales + b * 2, 2);
  if (both) std::memcpy(&hi, scales + b * 2 + 2, 2);
  const uint32_t bits = lo | static_cast<uint32_t>(hi) << 16;
  const __m128 s = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(bits)));
  const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s));
}

// Software prefetch distance along a row (the bf16 GEMV's, table_avx512.cpp): the hardware
// prefetchers alone do not keep four streams per thread ahead of the loads.
constexpr int kPrefetchBytes = 1024;

// Accumulates 64 inputs (k.. k + 63; only the first 32 when !both) of every row and token.
template <int T>
inline void step64(const uint8_t* xq, size_t xrb, int64_t n_in, const uint8_t* const* rows,
                   int64_t k, bool both, __m512 (*acc)[T]) {
  const __mmask64 m = both ? ~0ULL : 0xFFFFFFFFULL;
  const int64_t b = k / kQuantBlock;
  const __m512i zero = _mm512_setzero_si512();
  __m512i xs[T];
  __m512 dx[T];
  for (int t = 0; t < T; ++t) {
    xs[t] =
        both ? _mm512_loadu_si512(xq + t * xrb + k) : _mm512_maskz_loadu_epi8(m, xq + t * xrb + k);
    dx[t] = scale_pair(xq + t * xrb + n_in, b, both);
  }
  for (int r = 0; r < kRows; ++r) {
    const __m512i w =
        both ? _mm512_loadu_si512(rows[r] + k) : _mm512_maskz_loadu_epi8(m, rows[r] + k);
    _mm_prefetch(reinterpret_cast<const char*>(rows[r] + k) + kPrefetchBytes, _MM_HINT_T0);
    const __m512i aw = _mm512_abs_epi8(w);
    const __mmask64 neg = _mm512_movepi8_mask(w);
    const __m512 dw = scale_pair(rows[r] + n_in, b, both);
    for (int t = 0; t < T; ++t) {
      const __m512i xsgn = _mm512_mask_sub_epi8(xs[t], neg, zero, xs[t]);
      const __m512i dot = _mm512_dpbusd_epi32(zero, aw, xsgn);
      acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, dx[t]), acc[r][t]);
    }
  }
}

template <int T>
void rows_pass(const uint8_t* xq, int64_t n_in, const uint8_t* const* rows, float (*out)[kTokens]) {
  const size_t xrb = row_bytes(DType::kInt8, n_in);
  __m512 acc[kRows][T];
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= n_in; k += 64) step64<T>(xq, xrb, n_in, rows, k, true, acc);
  if (k < n_in) step64<T>(xq, xrb, n_in, rows, k, false, acc);  // a last block of 32
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < T; ++t) out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

}  // namespace

void gemv_int8_vnni(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                    int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t rb = row_bytes(DType::kInt8, n_in);
  for (int64_t o = o_begin; o < o_end; o += kRows) {
    const int n_valid = static_cast<int>(std::min<int64_t>(kRows, o_end - o));
    const uint8_t* rows[kRows];
    for (int r = 0; r < kRows; ++r)  // past the end: repeat the last row, results dropped
      rows[r] = w + static_cast<size_t>(o + std::min(r, n_valid - 1)) * rb;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokens) {
      const int nt = static_cast<int>(std::min<int64_t>(kTokens, n_tokens - t0));
      float out[kRows][kTokens];
      const uint8_t* xt = xq + static_cast<size_t>(t0) * rb;
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
      for (int r = 0; r < n_valid; ++r)
        for (int t = 0; t < nt; ++t)
          y[(t0 + t) * ldy + o + r] = out[r][t] + (bias ? bias[o + r] : 0.0f);
    }
  }
}

}  // namespace shardlm::cpu
