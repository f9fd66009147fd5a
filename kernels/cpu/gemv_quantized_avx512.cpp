// The AVX-512 GEMV for int8 and int4 block-quantized weights with f32 activations, and the block
// dequantizer of the GEMM's panels (compiled with AVX-512 flags; picked at run time by
// gemv_quantized). Four weight rows stream side by side; each block of 32 values is widened to
// f32 once, scaled, and multiplied with up to four tokens' activations from L1.
// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_*
// placeholders; GCC bug 105593, fixed in GCC 13). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemv_quantized.h"
#include "kernels/cpu/gemv_quantized_blocks.h"
#include "kernels/cpu/gemv_quantized_load.h"
#include "runtime/core/dtype.h"
#include "runtime/core/quant.h"

namespace shardlm::cpu {

namespace {

// The f16 scale of block b, broadcast.
inline __m512 block_scale(DType dtype, const uint8_t* row, int64_t n_in, int64_t b) {
  uint16_t h;
  std::memcpy(&h, row + quant_scale_at(dtype, n_in, b), 2);
  return _mm512_set1_ps(_cvtsh_ss(h));
}

// The 32 weights of block b, dequantized: w0 inputs 0-15, w1 inputs 16-31.
inline void load_block(DType dtype, const uint8_t* row, int64_t n_in, int64_t b, __m512* w0,
                       __m512* w1) {
  const __m512 d = block_scale(dtype, row, n_in, b);
  const __m256i q = load_block_q(dtype, row, n_in, b);
  *w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))), d);
  *w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))), d);
}

constexpr int kRows = 4;    // rows streamed together
constexpr int kTokens = 4;  // tokens per pass over the rows

template <int T>
void rows_pass(DType dtype, const float* x, int64_t n_in, const uint8_t* const* rows,
               float (*out)[kTokens]) {
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
      __m512 w0, w1;
      load_block(dtype, rows[r], n_in, b, &w0, &w1);
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

void gemv_quantized_avx512(DType dtype, const float* x, int64_t n_tokens, int64_t n_in,
                           const uint8_t* w, int64_t o_begin, int64_t o_end, const float* bias,
                           float* y, int64_t ldy) {
  gemv_row_blocks<kRows, kTokens>(
      w, row_bytes(dtype, n_in), n_tokens, o_begin, o_end, bias, y, ldy,
      [&](int nt, int64_t t0, const uint8_t* const* rows, float(*out)[kTokens]) {
        const float* xt = x + t0 * n_in;
        switch (nt) {
          case 1:
            rows_pass<1>(dtype, xt, n_in, rows, out);
            break;
          case 2:
            rows_pass<2>(dtype, xt, n_in, rows, out);
            break;
          case 3:
            rows_pass<3>(dtype, xt, n_in, rows, out);
            break;
          default:
            rows_pass<4>(dtype, xt, n_in, rows, out);
            break;
        }
      });
}

namespace {

// The 16 blocks of a whole group (dtype.h), dequantized. The group's 8 steps as signed bytes
// (int8: 8 loads of 64 bytes, xor 0x80; int4: 4 loads, low and high nibbles minus 8) hold 4
// inputs of every block, one block per 32-bit lane; two rounds of unpacks put a block's inputs
// 0-15 and 16-31 into 16-byte lanes, which are widened to f32 and scaled.
//   group [the group's 256 (int4) or 512 (int8) bytes], scales [16 / quant_scale_blocks(dtype)
//   f16: the group's], out [512]
void dequantize_group(DType dtype, const uint8_t* group, const uint8_t* scales, float* out) {
  __m512i step[8];
  if (is_int4(dtype)) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
    for (int s = 0; s < 4; ++s) {
      const __m512i v = _mm512_loadu_si512(group + 64 * s);
      step[2 * s] = _mm512_sub_epi8(_mm512_and_si512(v, low4), eight);
      step[2 * s + 1] = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4), eight);
    }
  } else {
    for (int s = 0; s < 8; ++s)
      step[s] = _mm512_xor_si512(_mm512_loadu_si512(group + 64 * s), _mm512_set1_epi8(-128));
  }
  __m512i a[4], b[4];  // per 128-bit lane k: a blocks 4k, 4k + 1; b blocks 4k + 2, 4k + 3
  for (int t = 0; t < 4; ++t) {
    a[t] = _mm512_unpacklo_epi32(step[2 * t], step[2 * t + 1]);  // qword m: block 4k + m,
    b[t] = _mm512_unpackhi_epi32(step[2 * t], step[2 * t + 1]);  // inputs 8t .. 8t + 7
  }
  // q[m][h]: lane k holds block 4k + m's inputs 16h .. 16h + 15.
  alignas(64) int8_t q[4][2][64];
  for (int h = 0; h < 2; ++h) {
    _mm512_store_si512(q[0][h], _mm512_unpacklo_epi64(a[2 * h], a[2 * h + 1]));
    _mm512_store_si512(q[1][h], _mm512_unpackhi_epi64(a[2 * h], a[2 * h + 1]));
    _mm512_store_si512(q[2][h], _mm512_unpacklo_epi64(b[2 * h], b[2 * h + 1]));
    _mm512_store_si512(q[3][h], _mm512_unpackhi_epi64(b[2 * h], b[2 * h + 1]));
  }
  alignas(64) float d[16];
  if (const int64_t sb = quant_scale_blocks(dtype); sb == 1) {
    _mm512_store_ps(d,
                    _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales))));
  } else {  // block j's scale is the group's scale j / sb
    for (int j = 0; j < 16; ++j) {
      uint16_t h;
      std::memcpy(&h, scales + j / sb * 2, 2);
      d[j] = _cvtsh_ss(h);
    }
  }
  for (int j = 0; j < 16; ++j) {
    const __m512 dj = _mm512_set1_ps(d[j]);
    for (int h = 0; h < 2; ++h) {
      const __m128i v =
          _mm_load_si128(reinterpret_cast<const __m128i*>(q[j % 4][h] + 16 * (j / 4)));
      _mm512_storeu_ps(out + 32 * j + 16 * h,
                       _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)), dj));
    }
  }
}

}  // namespace

void dequantize_blocks_avx512(DType dtype, const uint8_t* row, int64_t n_in, int64_t k0, int64_t kc,
                              float* out) {
  constexpr int64_t kGroup = kQuantBlock * kQuantGroupBlocks;
  for (int64_t k = k0; k < k0 + kc;) {
    // Whole groups at once; blocks of a partial group or range one at a time.
    if (k % kGroup == 0 && k + kGroup <= k0 + kc && k + kGroup <= n_in) {
      const int64_t group_bytes = is_int4(dtype) ? kGroup / 2 : kGroup;
      dequantize_group(dtype, row + k / kGroup * group_bytes,
                       row + quant_scale_at(dtype, n_in, k / kQuantBlock), out + (k - k0));
      k += kGroup;
      continue;
    }
    __m512 w0, w1;
    load_block(dtype, row, n_in, k / kQuantBlock, &w0, &w1);
    _mm512_storeu_ps(out + (k - k0), w0);
    _mm512_storeu_ps(out + (k - k0) + 16, w1);
    k += kQuantBlock;
  }
}

void quantize_row_int8_avx512(const float* x, int64_t n, uint8_t* out) {
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m512i offset = _mm512_set1_epi32(128);
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    const __m512 a = _mm512_loadu_ps(xb), c = _mm512_loadu_ps(xb + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
    // The scale, its rounding to f16 and the reciprocal exactly as quantize_row_int8 computes them.
    const uint16_t h = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(h);
    const __m512 inv = _mm512_set1_ps(d > 0 ? 1.0f / d : 0.0f);
    constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512 qa =
        _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(a, inv), kRound), lo), hi);
    const __m512 qc =
        _mm512_min_ps(_mm512_max_ps(_mm512_roundscale_ps(_mm512_mul_ps(c, inv), kRound), lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b * kQuantBlock),
                     _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(qa), offset)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b * kQuantBlock + 16),
                     _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(qc), offset)));
    std::memcpy(out + n + b * 2, &h, 2);
  }
}

}  // namespace shardlm::cpu
