// The AVX2 GEMV for int8 and int4 block-quantized weights with int8 activations (the AVX2 twin of
// gemv_quantized_vnni.cpp, picked by matmul.cpp on machines without AVX-512), and the block
// dequantizer of the GEMM's panels (compiled with AVX2, FMA and F16C). Activations come quantized
// and arranged in the rows' interleaved order (arrange_activations). Four weight rows stream side
// by side; a group's 16 blocks are two halves of 8, one block per 32-bit lane: VPMADDUBSW /
// VPMADDWD sum the weights times each token's signed bytes into the lanes (exact integers) over
// the group's steps, and each half is scaled once by 8 weight scales times activation scales.
// Not the AVX-512 kernels.
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

// The f16 scale of block b.
inline float block_scale(DType dtype, const uint8_t* row, int64_t n_in, int64_t b) {
  uint16_t h;
  std::memcpy(&h, row + quant_scale_at(dtype, n_in, b), 2);
  return _cvtsh_ss(h);
}

// The 32 values q of block b as f32: q[c] holds inputs 8c .. 8c + 7.
inline void load_block_f32(DType dtype, const uint8_t* row, int64_t n_in, int64_t b, __m256 q[4]) {
  const __m256i v = load_block_q(dtype, row, n_in, b);
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  q[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
  q[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
  q[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
  q[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

inline float reduce_add(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// sum_i w[i] * x[i] over 32 signed bytes each, as 8 int32 lanes: VPMADDUBSW takes |w| (unsigned;
// 128 for w = -128 is right) and x with w's sign moved onto it (|x| <= 127, so no wrap); a pair
// is at most 2 * 128 * 127 < 2^15, so the 16-bit sums never saturate.
inline __m256i dot_i8(__m256i w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

constexpr int kRows = 4;    // rows streamed together
constexpr int kTokens = 2;  // tokens per pass over the rows (AVX2's 16 registers: 8 accumulators)

// Software prefetch distance along a row (as the other GEMVs): several streams per thread.
constexpr int kPrefetchBytes = 4096;

// The first n (< 8) f16 scales from p as f32; the others 0 (never read past the row).
inline __m256 scales_partial(const uint8_t* p, int64_t n) {
  alignas(16) uint16_t h[8] = {};
  std::memcpy(h, p, static_cast<size_t>(n) * 2);
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
}

// The scales of n (<= 8) consecutive blocks from block b0 of a row of type T, one per lane; the
// other lanes 0.   ws [the row's scales]
template <DType T>
inline __m256 block_scales(const uint8_t* ws, int64_t b0, int64_t n) {
  if constexpr (quant_scale_blocks(T) == 1) {
    const uint8_t* p = ws + b0 * 2;
    return n == 8 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))
                  : scales_partial(p, n);
  } else {  // kInt4G128: 4 blocks per scale, and b0, n multiples of 4
    static_assert(quant_scale_blocks(T) == 4);
    uint16_t h[2] = {};
    std::memcpy(h, ws + b0 / 4 * 2, n > 4 ? 4 : 2);
    const float a = _cvtsh_ss(h[0]), c = n > 4 ? _cvtsh_ss(h[1]) : 0.0f;
    return _mm256_setr_ps(a, a, a, a, c, c, c, c);
  }
}

// The first n (<= 8) 32-bit lanes of p; the others 0.
inline __m256i load_lanes(const uint8_t* p, int64_t n) {
  if (n >= 8) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane);
  return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), mask);
}

// Rows (dtype.h: groups of 16 blocks, one block per 32-bit lane) x T tokens of arranged
// activations. Per group, each half of 8 blocks sums its steps in int32 lanes:
// - int8: 8 steps of 32 bytes; the stored q + 128 xor 0x80 are the signed q, which VPMADDUBSW
//   takes as |q| with the sign moved onto x (a pair at most 2 x 128 x 127 < 2^15);
// - int4: 4 steps of 32 bytes, low and high nibbles (unsigned, the stored q + 8) against steps
//   2s and 2s + 1 of x (a pair at most 2 x 15 x 128), the lanes starting at -8 x the blocks' sums
//   of x.
// Then one conversion and one FMA by the 8 scale products.
template <DType kType, int T>
void rows_pass(const uint8_t* xa, int64_t n_in, const uint8_t* const* rows, float (*out)[kTokens]) {
  const size_t xab = arranged_activation_row_bytes(n_in);
  const int64_t nb = n_in / kQuantBlock;
  constexpr bool kInt4 = is_int4(kType);
  constexpr int64_t kGroupBytes = kInt4 ? 256 : 512;
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i flip = _mm256_set1_epi8(-128);
  __m256 acc[kRows][T];
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t g = 0; g * kQuantGroupBlocks < nb; ++g) {
    const int64_t G = std::min<int64_t>(kQuantGroupBlocks, nb - g * kQuantGroupBlocks);
    for (int64_t half = 0; half < 2 && 8 * half < G; ++half) {
      const int64_t n_lanes = std::min<int64_t>(8, G - 8 * half);  // blocks of this half
      const int64_t b0 = g * kQuantGroupBlocks + 8 * half;
      __m256i sum[kRows][T];
      __m256 sx[T];
      for (int t = 0; t < T; ++t) {
        const uint8_t* xt = xa + t * xab;
        sx[t] = _mm256_castsi256_ps(load_lanes(xt + n_in + b0 * 4, n_lanes));
        __m256i start = _mm256_setzero_si256();
        if constexpr (kInt4)
          start = _mm256_sub_epi32(
              start, _mm256_slli_epi32(load_lanes(xt + n_in + nb * 4 + b0 * 4, n_lanes), 3));
        for (int r = 0; r < kRows; ++r) sum[r][t] = start;
      }
      for (int64_t s = 0; s < (kInt4 ? 4 : 8); ++s) {
        __m256i x0[T], x1[T];  // int4: steps 2s and 2s + 1 of x; int8: step s
        for (int t = 0; t < T; ++t) {
          const uint8_t* xg = xa + t * xab + g * 512 + 32 * half;
          x0[t] = load_lanes(xg + 4 * G * (kInt4 ? 2 * s : s), n_lanes);
          if constexpr (kInt4) x1[t] = load_lanes(xg + 4 * G * (2 * s + 1), n_lanes);
        }
        for (int r = 0; r < kRows; ++r) {
          const uint8_t* p = rows[r] + g * kGroupBytes + 4 * G * s + 32 * half;
          _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
          const __m256i v = load_lanes(p, n_lanes);
          if constexpr (kInt4) {
            const __m256i lo = _mm256_and_si256(v, low4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            for (int t = 0; t < T; ++t) {
              const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, x0[t]),
                                                   _mm256_maddubs_epi16(hi, x1[t]));
              sum[r][t] = _mm256_add_epi32(sum[r][t], _mm256_madd_epi16(p16, ones));
            }
          } else {
            const __m256i w = _mm256_xor_si256(v, flip);
            for (int t = 0; t < T; ++t) sum[r][t] = _mm256_add_epi32(sum[r][t], dot_i8(w, x0[t]));
          }
        }
      }
      for (int r = 0; r < kRows; ++r) {
        const __m256 sw =
            block_scales<kType>(rows[r] + quant_scales_offset(kType, n_in), b0, n_lanes);
        for (int t = 0; t < T; ++t)
          acc[r][t] =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[r][t]), _mm256_mul_ps(sw, sx[t]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int t = 0; t < T; ++t) out[r][t] = reduce_add(acc[r][t]);
}

}  // namespace

void gemv_quantized_int8x_avx2(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                               DType dtype, int64_t o_begin, int64_t o_end, const float* bias,
                               float* y, int64_t ldy) {
  const size_t xab = arranged_activation_row_bytes(n_in);
  gemv_row_blocks<kRows, kTokens>(
      w, row_bytes(dtype, n_in), n_tokens, o_begin, o_end, bias, y, ldy,
      [&](int nt, int64_t t0, const uint8_t* const* rows, float(*out)[kTokens]) {
        const uint8_t* xa = xq + t0 * xab;
        if (dtype == DType::kInt4) {
          if (nt == 1) return rows_pass<DType::kInt4, 1>(xa, n_in, rows, out);
          return rows_pass<DType::kInt4, 2>(xa, n_in, rows, out);
        }
        if (dtype == DType::kInt4G128) {
          if (nt == 1) return rows_pass<DType::kInt4G128, 1>(xa, n_in, rows, out);
          return rows_pass<DType::kInt4G128, 2>(xa, n_in, rows, out);
        }
        if (nt == 1) return rows_pass<DType::kInt8, 1>(xa, n_in, rows, out);
        return rows_pass<DType::kInt8, 2>(xa, n_in, rows, out);
      });
}

void dequantize_blocks_avx2(DType dtype, const uint8_t* row, int64_t n_in, int64_t k0, int64_t kc,
                            float* out) {
  for (int64_t k = k0; k < k0 + kc; k += kQuantBlock) {
    const int64_t b = k / kQuantBlock;
    __m256 q[4];
    load_block_f32(dtype, row, n_in, b, q);
    const __m256 d = _mm256_set1_ps(block_scale(dtype, row, n_in, b));
    for (int c = 0; c < 4; ++c) _mm256_storeu_ps(out + (k - k0) + 8 * c, _mm256_mul_ps(q[c], d));
  }
}

void quantize_row_int8_avx2(const float* x, int64_t n, uint8_t* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.0f),
               hi = _mm256_set1_ps(127.0f);
  const __m256i offset = _mm256_set1_epi32(128);
  // packus_epi32 then packus_epi16 leave the four vectors' 4-byte groups interleaved by lane.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int c = 0; c < 4; ++c) {
      v[c] = _mm256_loadu_ps(xb + 8 * c);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[c]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    // The scale, its rounding to f16 and the reciprocal exactly as quantize_row_int8 computes them.
    const uint16_t h = f32_to_f16(_mm_cvtss_f32(m4) / 127.0f);
    const float d = f16_to_f32(h);
    const __m256 inv = _mm256_set1_ps(d > 0 ? 1.0f / d : 0.0f);
    __m256i q[4];
    for (int c = 0; c < 4; ++c) {
      const __m256 r =
          _mm256_round_ps(_mm256_mul_ps(v[c], inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q[c] = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi)), offset);
    }
    const __m256i bytes =
        _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]), _mm256_packus_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * kQuantBlock),
                        _mm256_permutevar8x32_epi32(bytes, order));
    std::memcpy(out + n + b * 2, &h, 2);
  }
}

}  // namespace shardlm::cpu
