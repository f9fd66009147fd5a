// The AVX-512 VNNI GEMVs for int8 and int4 weights with int8 activations (compiled with AVX-512
// VNNI flags; picked at run time by matmul.cpp when int8_dot_supported()). VPDPBUSD multiplies the
// weights' stored values (unsigned: int8 q + 128, int4 q + 8) with the activations' signed bytes,
// and starting each 32-bit lane at -offset times its sum of x cancels the offset, so the lanes sum
// exact integer products.
// - int8 (activations: quantize_row_int8's row): 64 inputs at a time; lanes 0-7 hold one block of
//   32, lanes 8-15 the next, and each half is scaled by its block's weight scale times activation
//   scale before the f32 accumulation.
// - int4 (activations: arrange_activations_int4's row, in the weights' interleaved order): a group
//   of 16 blocks is 4 loads of 64 bytes, each holding 8 inputs of every block, one block per lane;
//   the lanes sum the whole group in int32 and are scaled once per group.
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
#include "runtime/core/dtype.h"

namespace shardlm::cpu {

namespace {

// Rows streamed together: eight measured no faster (cpu-matmul-bench, 1 x 1024 x 6144).
constexpr int kRows = 4;
constexpr int kTokens = 4;  // tokens per pass over the rows

// Software prefetch distance along a row (the bf16 GEMV's, table_avx512.cpp): the hardware
// prefetchers alone do not keep several streams per thread ahead of the loads.
constexpr int kPrefetchBytes = 4096;

// The f16 scales of blocks [b, b + n) (n <= 16) as 16 floats; lanes past n are 0. Masked so
// that the last row's scales are never read past.
inline __m512 scales16(const uint8_t* scales, int64_t b, int64_t n) {
  const __mmask16 m = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1);
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, scales + b * 2));
}

// The stored int8 weights: 64 bytes q + 128 from input k (32 when only one block is left).
struct Int8Weights {
  static constexpr int kOffset = 128;
  static constexpr int64_t kBytesPer64 = 64;
  static __m512i load(const uint8_t* row, int64_t k, bool both) {
    return both ? _mm512_loadu_si512(row + k) : _mm512_maskz_loadu_epi8(0xFFFFFFFFULL, row + k);
  }
};

// int8 rows x tokens: dot products over all n_in inputs. Per chunk of 512 inputs (16 blocks),
// each row's and token's 16 scales are loaded once; per step of 64 inputs one permute spreads the
// step's two scales over the register halves (lanes 0-7: block 2i, 8-15: block 2i + 1).
template <class Weights, int R, int T>
void rows_pass(const uint8_t* xq, int64_t n_in, const uint8_t* const* rows, float (*out)[kTokens]) {
  const size_t xrb = row_bytes(DType::kInt8, n_in);
  const int64_t w_scales = n_in * Weights::kBytesPer64 / 64;  // a weight row's scales
  const int64_t n_blocks = n_in / kQuantBlock;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const __m512i zero = _mm512_setzero_si512();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));  // 128 unsigned, -128 signed
  const __m512i offset = _mm512_set1_epi8(static_cast<char>(Weights::kOffset));  // unsigned
  const __m512i half = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int64_t b0 = 0; b0 < n_blocks; b0 += 16) {
    const int64_t nb = std::min<int64_t>(16, n_blocks - b0);
    __m512 sw[R], sx[T];
    for (int r = 0; r < R; ++r) sw[r] = scales16(rows[r] + w_scales, b0, nb);
    for (int t = 0; t < T; ++t) sx[t] = scales16(xq + t * xrb + n_in, b0, nb);
    // With few tokens, each row-token pair's 16 scale products are formed once per chunk (one
    // multiply instead of one per step); with more, they would not fit the registers.
    constexpr bool kProducts = R * T <= 8;
    __m512 sp[kProducts ? R : 1][kProducts ? T : 1];
    if constexpr (kProducts) {
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) sp[r][t] = _mm512_mul_ps(sw[r], sx[t]);
    }
    for (int64_t i = 0; 2 * i < nb; ++i) {
      const int64_t k = (b0 + 2 * i) * kQuantBlock;
      const bool both = 2 * i + 1 < nb;
      const __mmask64 m = both ? ~0ULL : 0xFFFFFFFFULL;
      const __m512i idx = _mm512_add_epi32(half, _mm512_set1_epi32(static_cast<int>(2 * i)));
      // Per token: x as signed bytes (the stored bytes xor 0x80; lanes past a tail block 0), and
      // -offset * (each lane's sum of 4 x), which cancels the weights' offset below.
      __m512i xs[T], base[T];
      __m512 dx[T];
      for (int t = 0; t < T; ++t) {
        const __m512i raw = both ? _mm512_loadu_si512(xq + t * xrb + k)
                                 : _mm512_maskz_loadu_epi8(m, xq + t * xrb + k);
        xs[t] = _mm512_maskz_mov_epi8(m, _mm512_xor_si512(raw, flip));
        base[t] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offset, xs[t]));
        if constexpr (!kProducts) dx[t] = _mm512_permutexvar_ps(idx, sx[t]);
      }
      for (int r = 0; r < R; ++r) {
        // The weight values q + offset are VPDPBUSD's unsigned operand:
        // sum (q_w + offset) q_x - offset sum q_x = sum q_w q_x, exact in each 32-bit lane.
        const __m512i w = Weights::load(rows[r], k, both);
        _mm_prefetch(
            reinterpret_cast<const char*>(rows[r] + k * Weights::kBytesPer64 / 64) + kPrefetchBytes,
            _MM_HINT_T0);
        for (int t = 0; t < T; ++t) {
          const __m512i dot = _mm512_dpbusd_epi32(base[t], w, xs[t]);
          __m512 s;
          if constexpr (kProducts) {
            s = _mm512_permutexvar_ps(idx, sp[r][t]);
          } else {
            s = _mm512_mul_ps(_mm512_permutexvar_ps(idx, sw[r]), dx[t]);
          }
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, acc[r][t]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

// int4 rows x tokens over all n_in inputs, a group of 16 blocks at a time (dtype.h): per group and
// row, 4 loads of 64 bytes, their low and high nibbles meeting the token's arranged bytes (xa) in
// 8 VPDPBUSD into int32 lanes that start at the blocks' offset corrections; then one conversion
// and one FMA by the 16 scale products. A last group of G < 16 blocks reads 4 G bytes per step
// (masked; the other lanes stay 0). With up to 2 tokens, low and high nibbles sum into separate
// registers (two dependency chains of 4 instead of one of 8).
template <int R, int T>
void rows_pass_int4(const uint8_t* xa, int64_t n_in, const uint8_t* const* rows,
                    float (*out)[kTokens]) {
  const size_t xab = int4_activation_row_bytes(n_in);
  const int64_t nb = n_in / kQuantBlock;
  const int64_t w_scales = n_in / 2;
  constexpr bool kSplit = T <= 2;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int64_t g = 0; g * kInt4GroupBlocks < nb; ++g) {
    const int64_t G = std::min<int64_t>(kInt4GroupBlocks, nb - g * kInt4GroupBlocks);
    const __mmask64 m = G == 16 ? ~0ULL : (1ULL << (4 * G)) - 1;  // a step's 4 G bytes
    const __mmask16 mb = static_cast<__mmask16>(G == 16 ? 0xFFFF : (1u << G) - 1);
    const int64_t b0 = g * kInt4GroupBlocks;
    __m512i lo_sum[R][T], hi_sum[kSplit ? R : 1][kSplit ? T : 1];
    __m512 sx[T];
    for (int t = 0; t < T; ++t) {
      const uint8_t* xt = xa + t * xab;
      sx[t] = _mm512_maskz_loadu_ps(mb, xt + n_in + b0 * 4);
      const __m512i corr = _mm512_maskz_loadu_epi32(mb, xt + n_in + nb * 4 + b0 * 4);
      for (int r = 0; r < R; ++r) {
        lo_sum[r][t] = corr;
        if constexpr (kSplit) hi_sum[r][t] = _mm512_setzero_si512();
      }
    }
    for (int64_t s = 0; s < 4; ++s) {
      __m512i xlo[T], xhi[T];
      for (int t = 0; t < T; ++t) {
        const uint8_t* xg = xa + t * xab + g * 512 + 8 * G * s;
        xlo[t] = _mm512_maskz_loadu_epi8(m, xg);
        xhi[t] = _mm512_maskz_loadu_epi8(m, xg + 4 * G);
      }
      for (int r = 0; r < R; ++r) {
        const uint8_t* p = rows[r] + g * 256 + 4 * G * s;
        const __m512i v = _mm512_maskz_loadu_epi8(m, p);
        _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
        const __m512i lo = _mm512_and_si512(v, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        for (int t = 0; t < T; ++t) {
          lo_sum[r][t] = _mm512_dpbusd_epi32(lo_sum[r][t], lo, xlo[t]);
          if constexpr (kSplit) {
            hi_sum[r][t] = _mm512_dpbusd_epi32(hi_sum[r][t], hi, xhi[t]);
          } else {
            lo_sum[r][t] = _mm512_dpbusd_epi32(lo_sum[r][t], hi, xhi[t]);
          }
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512 sw = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mb, rows[r] + w_scales + b0 * 2));
      for (int t = 0; t < T; ++t) {
        __m512i sum = lo_sum[r][t];
        if constexpr (kSplit) sum = _mm512_add_epi32(sum, hi_sum[r][t]);
        acc[r][t] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(sw, sx[t]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

template <int T>
void int4_pass(const uint8_t* xa, int64_t n_in, const uint8_t* const* rows, float (*out)[kTokens]) {
  rows_pass_int4<kRows, T>(xa, n_in, rows, out);
}

template <class Weights>
void gemv_vnni(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w, size_t rb,
               int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t xrb = row_bytes(DType::kInt8, n_in);
  gemv_row_blocks<kRows, kTokens>(
      w, rb, n_tokens, o_begin, o_end, bias, y, ldy,
      [&](int nt, int64_t t0, const uint8_t* const* rows, float(*out)[kTokens]) {
        const uint8_t* xt = xq + static_cast<size_t>(t0) * xrb;
        switch (nt) {
          case 1:
            rows_pass<Weights, kRows, 1>(xt, n_in, rows, out);
            break;
          case 2:
            rows_pass<Weights, kRows, 2>(xt, n_in, rows, out);
            break;
          case 3:
            rows_pass<Weights, kRows, 3>(xt, n_in, rows, out);
            break;
          default:
            rows_pass<Weights, kRows, 4>(xt, n_in, rows, out);
            break;
        }
      });
}

}  // namespace

void gemv_quantized_vnni(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                         DType dtype, int64_t o_begin, int64_t o_end, const float* bias, float* y,
                         int64_t ldy) {
  const size_t rb = row_bytes(dtype, n_in);
  if (dtype == DType::kInt4) {
    const size_t xab = int4_activation_row_bytes(n_in);
    gemv_row_blocks<kRows, kTokens>(
        w, rb, n_tokens, o_begin, o_end, bias, y, ldy,
        [&](int nt, int64_t t0, const uint8_t* const* rows, float(*out)[kTokens]) {
          const uint8_t* xt = xq + static_cast<size_t>(t0) * xab;
          switch (nt) {
            case 1:
              return int4_pass<1>(xt, n_in, rows, out);
            case 2:
              return int4_pass<2>(xt, n_in, rows, out);
            case 3:
              return int4_pass<3>(xt, n_in, rows, out);
            default:
              return int4_pass<4>(xt, n_in, rows, out);
          }
        });
    return;
  }
  gemv_vnni<Int8Weights>(xq, n_tokens, n_in, w, rb, o_begin, o_end, bias, y, ldy);
}

}  // namespace shardlm::cpu
