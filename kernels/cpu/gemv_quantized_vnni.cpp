// The AVX-512 VNNI GEMVs for int8 and int4 weights with int8 activations (compiled with AVX-512
// VNNI flags; picked at run time by matmul.cpp when int8_dot_supported()). Activations come
// quantized like int8 weight rows (quantize_row_int8: bytes q + 128, one f16 scale per 32). 64
// inputs at a time: the weights' stored values (int8: the bytes q + 128; int4: one 32-byte load of
// paired nibbles q + 8, unpacked into 64 bytes) are VPDPBUSD's unsigned operand and x's signed
// bytes the other; starting each 32-bit lane at -offset times its sum of x cancels the offset,
// so each lane sums 4 exact integer products; lanes 0-7 hold one block of 32, lanes 8-15 the next,
// and each half is scaled by its blocks' weight scale times activation scale before the f32
// accumulation. GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the
// _mm512_undefined_* placeholders; GCC bug 105593, fixed in GCC 13). Silenced for this file only.
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
  static constexpr bool kWideSteps = false;
  static constexpr int kOffset = 128;
  static constexpr int64_t kBytesPer64 = 64;
  static __m512i load(const uint8_t* row, int64_t k, bool both) {
    return both ? _mm512_loadu_si512(row + k) : _mm512_maskz_loadu_epi8(0xFFFFFFFFULL, row + k);
  }
};

// The stored int4 weights, unpacked: inputs k .. k + 63 as bytes q + 8 (dtype.h's pairing puts
// block 2i in the low nibbles of 32 bytes and block 2i + 1 in the high ones; a lone final block
// is 16 bytes holding its halves the same way).
struct Int4Weights {
  static constexpr bool kWideSteps = true;  // 128 inputs per 64-byte load (rows_pass)
  static constexpr int kOffset = 8;
  static constexpr int64_t kBytesPer64 = 32;
  static __m512i load(const uint8_t* row, int64_t k, bool both) {
    const __m256i lo_mask = _mm256_set1_epi8(0x0F);
    if (both) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k / 2));
      const __m256i lo = _mm256_and_si256(v, lo_mask);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo_mask);
      return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k / 2));
    const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
    return _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
  }
};

// Rows x tokens dot products over all n_in inputs. Per chunk of 512 inputs (16 blocks), each
// row's and token's 16 scales are loaded once; per step of 64 inputs one permute spreads the
// step's two scales over the register halves (lanes 0-7: block 2i, 8-15: block 2i + 1).
// int4 rows take wide steps of 128 inputs where they can: one 64-byte load holds blocks c .. c + 3
// as two pairs, its low nibbles blocks c and c + 2, its high nibbles c + 1 and c + 3, so each
// token's x is regrouped the same way (once per step, shared by the R rows) instead of the
// weights being unpacked 32 bytes at a time.
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
    int64_t wide = 0;  // blocks of this chunk done by wide steps
    if constexpr (Weights::kWideSteps) {
      for (; wide + 4 <= nb; wide += 4) {
        const int64_t k = (b0 + wide) * kQuantBlock;
        const int j = static_cast<int>(wide);
        // Lanes 0-7: block c (low nibbles) or c + 1 (high); lanes 8-15: c + 2 or c + 3.
        const __m512i idx_lo = _mm512_add_epi32(_mm512_add_epi32(half, half), _mm512_set1_epi32(j));
        const __m512i idx_hi = _mm512_add_epi32(idx_lo, _mm512_set1_epi32(1));
        __m512i xlo[T], xhi[T], base_lo[T], base_hi[T];
        __m512 dx_lo[T], dx_hi[T];
        for (int t = 0; t < T; ++t) {
          const __m512i a = _mm512_loadu_si512(xq + t * xrb + k);             // blocks c, c + 1
          const __m512i b = _mm512_loadu_si512(xq + t * xrb + k + 64);        // blocks c + 2, c + 3
          xlo[t] = _mm512_xor_si512(_mm512_shuffle_i64x2(a, b, 0x44), flip);  // c, c + 2
          xhi[t] = _mm512_xor_si512(_mm512_shuffle_i64x2(a, b, 0xEE), flip);  // c + 1, c + 3
          base_lo[t] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offset, xlo[t]));
          base_hi[t] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offset, xhi[t]));
          if constexpr (!kProducts) {
            dx_lo[t] = _mm512_permutexvar_ps(idx_lo, sx[t]);
            dx_hi[t] = _mm512_permutexvar_ps(idx_hi, sx[t]);
          }
        }
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        for (int r = 0; r < R; ++r) {
          const __m512i v = _mm512_loadu_si512(rows[r] + k / 2);
          _mm_prefetch(reinterpret_cast<const char*>(rows[r] + k / 2) + kPrefetchBytes,
                       _MM_HINT_T0);
          const __m512i lo = _mm512_and_si512(v, low4);
          const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
          for (int t = 0; t < T; ++t) {
            const __m512i dot_lo = _mm512_dpbusd_epi32(base_lo[t], lo, xlo[t]);
            const __m512i dot_hi = _mm512_dpbusd_epi32(base_hi[t], hi, xhi[t]);
            __m512 s_lo, s_hi;  // the step's scale products: weight scale x activation scale
            if constexpr (kProducts) {
              s_lo = _mm512_permutexvar_ps(idx_lo, sp[r][t]);
              s_hi = _mm512_permutexvar_ps(idx_hi, sp[r][t]);
            } else {
              s_lo = _mm512_mul_ps(_mm512_permutexvar_ps(idx_lo, sw[r]), dx_lo[t]);
              s_hi = _mm512_mul_ps(_mm512_permutexvar_ps(idx_hi, sw[r]), dx_hi[t]);
            }
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_lo), s_lo, acc[r][t]);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_hi), s_hi, acc[r][t]);
          }
        }
      }
    }
    for (int64_t i = wide / 2; 2 * i < nb; ++i) {
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
    gemv_vnni<Int4Weights>(xq, n_tokens, n_in, w, rb, o_begin, o_end, bias, y, ldy);
  } else {
    gemv_vnni<Int8Weights>(xq, n_tokens, n_in, w, rb, o_begin, o_end, bias, y, ldy);
  }
}

}  // namespace shardlm::cpu
