// The AVX-512 VNNI GEMV for int8 weights with int8 activations (compiled with AVX-512 VNNI
// flags; picked at run time by matmul.cpp when int8_dot_supported()). Activations come quantized
// like weight rows (quantize_row_int8: bytes q + 128, one f16 scale per 32). 64 inputs at a
// time: VPDPBUSD multiplies the stored weight bytes (unsigned) with x's signed bytes; starting
// each 32-bit lane at -128 times its sum of x cancels the weights' +128 offset, so each lane sums
// 4 exact integer products; lanes 0-7 hold one block of 32, lanes 8-15 the next, and each half is
// scaled by its blocks' weight scale times activation scale before the f32 accumulation. GCC 12
// reports -Wuninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_* placeholders;
// GCC bug 105593, fixed in GCC 13). Silenced for this file only.
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

// Rows streamed together: eight measured no faster (cpu-matmul-bench, 1 x 1024 x 6144).
constexpr int kRows = 4;
constexpr int kTokens = 4;  // tokens per pass over the rows

// Software prefetch distance along a row (the bf16 GEMV's, table_avx512.cpp): the hardware
// prefetchers alone do not keep several streams per thread ahead of the loads.
constexpr int kPrefetchBytes = 1024;

// The f16 scales of blocks [b, b + n) (n <= 16) as 16 floats; lanes past n are 0. Masked so
// that the last row's scales are never read past.
inline __m512 scales16(const uint8_t* scales, int64_t b, int64_t n) {
  const __mmask16 m = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1);
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, scales + b * 2));
}

// Rows x tokens dot products over all n_in inputs. Per chunk of 512 inputs (16 blocks), each
// row's and token's 16 scales are loaded once; per step of 64 inputs one permute spreads the
// step's two scales over the register halves (lanes 0-7: block 2i, 8-15: block 2i + 1).
template <int R, int T>
void rows_pass(const uint8_t* xq, int64_t n_in, const uint8_t* const* rows, float (*out)[kTokens]) {
  const size_t xrb = row_bytes(DType::kInt8, n_in);
  const int64_t n_blocks = n_in / kQuantBlock;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));  // 128 unsigned, -128 signed
  const __m512i half = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int64_t b0 = 0; b0 < n_blocks; b0 += 16) {
    const int64_t nb = std::min<int64_t>(16, n_blocks - b0);
    __m512 sw[R], sx[T];
    for (int r = 0; r < R; ++r) sw[r] = scales16(rows[r] + n_in, b0, nb);
    for (int t = 0; t < T; ++t) sx[t] = scales16(xq + t * xrb + n_in, b0, nb);
    for (int64_t i = 0; 2 * i < nb; ++i) {
      const int64_t k = (b0 + 2 * i) * kQuantBlock;
      const bool both = 2 * i + 1 < nb;
      const __mmask64 m = both ? ~0ULL : 0xFFFFFFFFULL;
      const __m512i idx = _mm512_add_epi32(half, _mm512_set1_epi32(static_cast<int>(2 * i)));
      // Per token: x as signed bytes (the stored bytes xor 0x80; lanes past a tail block 0), and
      // -128 * (each lane's sum of 4 x), which cancels the weights' +128 offset below.
      __m512i xs[T], base[T];
      __m512 dx[T];
      for (int t = 0; t < T; ++t) {
        const __m512i raw = both ? _mm512_loadu_si512(xq + t * xrb + k)
                                 : _mm512_maskz_loadu_epi8(m, xq + t * xrb + k);
        xs[t] = _mm512_maskz_mov_epi8(m, _mm512_xor_si512(raw, flip));
        base[t] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, flip, xs[t]));
        dx[t] = _mm512_permutexvar_ps(idx, sx[t]);
      }
      for (int r = 0; r < R; ++r) {
        // The weight bytes q + 128 are VPDPBUSD's unsigned operand as stored:
        // sum (q_w + 128) q_x - 128 sum q_x = sum q_w q_x, exact in each 32-bit lane.
        const __m512i w =
            both ? _mm512_loadu_si512(rows[r] + k) : _mm512_maskz_loadu_epi8(m, rows[r] + k);
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + k) + kPrefetchBytes, _MM_HINT_T0);
        const __m512 dw = _mm512_permutexvar_ps(idx, sw[r]);
        for (int t = 0; t < T; ++t) {
          const __m512i dot = _mm512_dpbusd_epi32(base[t], w, xs[t]);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, dx[t]), acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

}  // namespace

void gemv_int8_vnni(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                    int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t rb = row_bytes(DType::kInt8, n_in);
  gemv_row_blocks<kRows, kTokens>(
      w, rb, n_tokens, o_begin, o_end, bias, y, ldy,
      [&](int nt, int64_t t0, const uint8_t* const* rows, float(*out)[kTokens]) {
        const uint8_t* xt = xq + static_cast<size_t>(t0) * rb;
        switch (nt) {
          case 1:
            rows_pass<kRows, 1>(xt, n_in, rows, out);
            break;
          case 2:
            rows_pass<kRows, 2>(xt, n_in, rows, out);
            break;
          case 3:
            rows_pass<kRows, 3>(xt, n_in, rows, out);
            break;
          default:
            rows_pass<kRows, 4>(xt, n_in, rows, out);
            break;
        }
      });
}

}  // namespace shardlm::cpu
