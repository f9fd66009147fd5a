// VDPBF16PS GEMV (AVX-512 BF16), see gemv_bf16_dot.h. Rows are cut into kStreams sequential
// streams (as the f32 GEMV does, so enough memory requests are in flight); each 32-element block
// of kStreams weight rows is loaded once and used for a pair of tokens, so no weight is widened
// and a pair of tokens costs one dot-product instruction per 32 weights and token.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/cpu/gemv_bf16_dot.h"
#include "kernels/cpu/isa.h"

#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/simd_avx512.h"

namespace shardlm::cpu {

namespace {

// 8 rows x 2 tokens per pass: 16 accumulators. At 16 tokens one thread ran at ~210 GFLOP/s
// (about 90% of the instruction's peak on the Zen 4 it was measured on); 4x4, 6x4 and 8x3
// were within 5%, and 8 streams keep the one-token case at the memory bandwidth.
constexpr int kStreams = 8;
constexpr int kTokensPerPass = 2;
// Bytes ahead of the loads each row is prefetched. 1024 (the f32 GEMV's, docs/benchmarks.md)
// lost to 512 in all of 10 interleaved rounds on Zen 4 (1 x 896 -> 9728, 2 threads: medians 34.2
// against 31.7 GB/s; 256 and 768 33.1; 4 streams instead of 8 the same).
constexpr int kPrefetchBytes = 512;
// On AMD, one or two tokens (one pass from memory) also prefetch each row this far ahead into L2:
// Zen 4, bf16 pack decode paired against the same pack without it: 1.02-1.04x (as the one-token
// int4 GEMV's, gemv_quantized_vnni.cpp). Not measured on Intel, which keeps the L1 prefetch only.
constexpr int kL2PrefetchBytesAmd = 2048;
// Elements per block of the rows when several passes sweep them (a multiple of 32): 8 rows x 512 B
// of weights, 16 tokens x 512 B and the accumulators stay in L1. 128, 256, 384, 512 and 1024
// were measured (Zen 5, 16 x 1024 -> 6144: 0.48, 0.43, 0.43, 0.46, 0.51 ms; unblocked 0.50).
constexpr int64_t kKBlock = 256;
constexpr int64_t kMaxTokens = 16;  // kGemvMaxTokens

using simd512::hsum;
using simd512::tail_mask32;

inline __m512 dot(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh&>(a), reinterpret_cast<__m512bh&>(b));
}

// acc[t * R + r] += row r . token t over elements [k0, k1) (k0 a multiple of 32; k1 a multiple
// of 32 or n, the masked tail then included), accumulators kept in memory between calls: the
// same instructions on the same lanes in the same order wherever [0, n) is cut into ranges, so a
// blocked sweep gives the bits of one pass over the whole row.
//   x [T][n] bf16 at stride ldx, w [R][n] bf16 at stride ld, acc [T * R]
// kPrefetch: 0 none, 1 the rows kPrefetchBytes ahead (the pass that reads a block from memory),
// 2 the rows' next block (a pass over a cached block, so reading the next one overlaps it), 3 as
// 1 and into L2 kL2PrefetchBytesAmd ahead.
template <int R, int T, int kPrefetch>
inline void dot_range(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ld, int64_t k0,
                      int64_t k1, int64_t n, __m512* part) {
  __m512 acc[T][R];
  for (int t = 0; t < T; ++t) {
    for (int r = 0; r < R; ++r) acc[t][r] = k0 == 0 ? _mm512_setzero_ps() : part[t * R + r];
  }
  int64_t k = k0;
  for (; k + 32 <= k1; k += 32) {
    __m512i wv[R];
    for (int r = 0; r < R; ++r) {
      if (kPrefetch == 1 || kPrefetch == 3) {
        _mm_prefetch(reinterpret_cast<const char*>(w + r * ld + k) + kPrefetchBytes, _MM_HINT_T0);
        if (kPrefetch == 3) {
          _mm_prefetch(reinterpret_cast<const char*>(w + r * ld + k) + kL2PrefetchBytesAmd,
                       _MM_HINT_T1);
        }
      } else if (kPrefetch == 2) {
        _mm_prefetch(reinterpret_cast<const char*>(w + r * ld + k + kKBlock), _MM_HINT_T0);
      }
      wv[r] = _mm512_loadu_si512(w + r * ld + k);
    }
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_loadu_si512(x + t * ldx + k);
      for (int r = 0; r < R; ++r) acc[t][r] = dot(acc[t][r], xv, wv[r]);
    }
  }
  if (k < k1) {  // the row's tail (k1 == n): zero-filled lanes add 0 * 0
    const __mmask32 m = tail_mask32(n - k);
    __m512i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_maskz_loadu_epi16(m, w + r * ld + k);
    for (int t = 0; t < T; ++t) {
      const __m512i xv = _mm512_maskz_loadu_epi16(m, x + t * ldx + k);
      for (int r = 0; r < R; ++r) acc[t][r] = dot(acc[t][r], xv, wv[r]);
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int r = 0; r < R; ++r) part[t * R + r] = acc[t][r];
  }
}

// R weight rows (at stride ld) against T token rows (at stride ldx), all n elements in one pass
// from memory (rows prefetched ahead, kPrefetch 1 or 3): out[t * R + r].
//   x [T][n] bf16, w [R][n] bf16
template <int R, int T, int kPrefetch>
inline void dot_block(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ld, int64_t n,
                      float* out) {
  __m512 acc[T * R];
  dot_range<R, T, kPrefetch>(x, ldx, w, ld, 0, n, n, acc);
  for (int i = 0; i < T * R; ++i) out[i] = hsum(acc[i]);
}

// Rows o, o + stride, ..., o + (R - 1) * stride against every token. One or two tokens: one pass
// over the rows, from memory with prefetch. More: the rows are cut into kKBlock-element blocks,
// and every token pair sweeps a block before the next block is read, so a block of the rows, of
// the tokens and the accumulators stay in L1 (whole rows of 8 streams plus 16 tokens do not fit
// a 48 KiB L1 and made the passes run from L2), and the second pass prefetches the next block,
// so memory reads overlap the passes that compute from cache (before, the first pass waited on
// memory and the others on the arithmetic). 16 x 1024 -> 6144: 0.50 -> 0.43 ms; x 3072 -> 1024:
// 0.265 -> 0.21 ms; the 152k-row lm_head at 16 tokens 13.1 -> 11.3 ms (Zen 5, 2 threads).
template <int R, int T, bool kL2Prefetch>
inline void rows_all_tokens(const uint16_t* x, int64_t n_tokens, int64_t n_in, const uint16_t* w,
                            int64_t o, int64_t stride, const float* bias, float* y, int64_t ldy) {
  const uint16_t* wr = w + o * n_in;
  const int64_t ld = stride * n_in;
  auto store = [&](int64_t t, float v, int r) {
    const int64_t row = o + r * stride;
    y[t * ldy + row] = v + (bias ? bias[row] : 0.0f);
  };
  if (n_tokens <= T) {
    float out[T * R];
    constexpr int kPrefetch = kL2Prefetch ? 3 : 1;
    if (n_tokens == T) {
      dot_block<R, T, kPrefetch>(x, n_in, wr, ld, n_in, out);
    } else {
      dot_block<R, 1, kPrefetch>(x, n_in, wr, ld, n_in, out);
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int r = 0; r < R; ++r) store(t, out[t * R + r], r);
    }
    return;
  }
  alignas(64) __m512 part[kMaxTokens * R];
  for (int64_t k0 = 0; k0 < n_in; k0 += kKBlock) {
    const int64_t k1 = std::min(n_in, k0 + kKBlock);
    int64_t t = 0;
    for (; t + T <= n_tokens; t += T) {
      if (t == 0) {
        dot_range<R, T, 1>(x, n_in, wr, ld, k0, k1, n_in, part);
      } else if (t == T) {  // the second pass fetches the next block while this one computes
        dot_range<R, T, 2>(x + t * n_in, n_in, wr, ld, k0, k1, n_in, part + t * R);
      } else {
        dot_range<R, T, 0>(x + t * n_in, n_in, wr, ld, k0, k1, n_in, part + t * R);
      }
    }
    for (; t < n_tokens; ++t) {
      dot_range<R, 1, 0>(x + t * n_in, n_in, wr, ld, k0, k1, n_in, part + t * R);
    }
  }
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int r = 0; r < R; ++r) store(t, hsum(part[t * R + r]), r);
  }
}

template <bool kL2Prefetch>
void gemv_rows(const uint16_t* x, int64_t n_tokens, int64_t n_in, const uint16_t* w,
               int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const int64_t q = (o_end - o_begin) / kStreams;
  for (int64_t i = 0; i < q; ++i) {
    rows_all_tokens<kStreams, kTokensPerPass, kL2Prefetch>(x, n_tokens, n_in, w, o_begin + i, q,
                                                           bias, y, ldy);
  }
  for (int64_t o = o_begin + kStreams * q; o < o_end; ++o) {
    rows_all_tokens<1, kTokensPerPass, kL2Prefetch>(x, n_tokens, n_in, w, o, 1, bias, y, ldy);
  }
}

}  // namespace

void gemv_bf16_dot(const uint16_t* x, int64_t n_tokens, int64_t n_in, const uint16_t* w,
                   int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  static const bool amd = amd_cpu();
  if (amd) {
    gemv_rows<true>(x, n_tokens, n_in, w, o_begin, o_end, bias, y, ldy);
  } else {
    gemv_rows<false>(x, n_tokens, n_in, w, o_begin, o_end, bias, y, ldy);
  }
}

void round_to_bf16_avx512(const float* x, int64_t n, uint16_t* out) {
  const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
  int64_t i = 0;
  for (; i < n; i += 16) {
    const __mmask16 m = simd512::tail_mask16(n - i);
    const __m512i b = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), one);
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(bias, lsb)), 16);
    _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtepi32_epi16(r));
  }
}

}  // namespace shardlm::cpu
