// The AVX-512 VNNI GEMVs for int8 and int4 weights with int8 activations (compiled with AVX-512
// VNNI flags; picked at run time by matmul.cpp when int8_dot_supported()). The activations come
// quantized and arranged in the rows' interleaved order (arrange_activations); a group of 16
// blocks (dtype.h) holds one block per 32-bit lane in every 64-byte load, so VPDPBUSD (the
// weights' stored values, unsigned: int8 q + 128, int4 q + 8, times x's signed bytes) sums a whole
// group per lane in int32, each lane starting at -offset times its block's sum of x, which cancels
// the offset; then one conversion and one FMA by the 16 scale products per group (kInt4G128: its 4
// scales, each spread over the 4 lanes of the blocks that share it). One token with whole groups
// (decode of one sequence) has a path of its own (rows_pass_one_token), tuned per vendor, with the
// same bits.
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
#include "kernels/cpu/isa.h"
#include "runtime/core/dtype.h"
#include "runtime/core/quant.h"

namespace shardlm::cpu {

namespace {

// Rows streamed together: eight measured no faster (cpu-matmul-bench, 1 x 1024 x 6144).
constexpr int kRows = 4;
constexpr int kTokens = 4;  // tokens per pass over the rows

// Software prefetch distance along a row: the hardware prefetchers alone do not keep several
// streams per thread ahead of the loads.
constexpr int kPrefetchBytes = 4096;

// One token on AMD (rows_pass_one_token): 8 rows streamed together, each prefetched
// 512 bytes ahead into L1 (the bf16 GEMV's streams and distance) and 2048 bytes ahead into L2. On
// Zen 4, 8 rows 4096 bytes ahead keep 32 KiB of prefetched lines in flight, the whole L1, and ran
// slower than 4 rows; 8 rows 512 bytes ahead read 1.02-1.07x faster than 4 rows 4096 ahead
// (int4g128, 1 x 1024 -> 4096 and 6144, 2048 -> 1024, 3072 -> 1024, 2 threads, interleaved; int8
// decode took the same tuning: 1.12-1.18x end to end against its general pass), and the L2
// prefetch 2048 ahead added 1.02-1.14x (1536, 3072 and 4096 ahead within 2% of it). Elsewhere
// (Intel) kRows and kPrefetchBytes, no L2 prefetch.
constexpr int kOneTokenRowsAmd = 8;
constexpr int kOneTokenPrefetchAmd = 512;
constexpr int kOneTokenL2PrefetchAmd = 2048;
// On AMD the one-token pass reads a group row after row up to this many groups of inputs (n_in
// 1024), step after step across the rows beyond (rows_pass_one_token's kRowOuter). Elsewhere
// step after step (Intel not measured with it).
constexpr int kOneTokenRowOuterGroupsAmd = 2;

// The weight scales of the G blocks starting at block b0 of a row, one per 32-bit lane (the
// lanes past G are 0): kInt4G128's G / 4 scales (G a multiple of 4) each spread over the 4 lanes
// of the blocks that share it. kWholeGroup (G = 16 known at compile time, the one-token pass)
// loads them unmasked, kInt4G128's 4 through an XMM conversion: 0.92x of the one-token pass's
// time with the masked 16-lane form; the general pass keeps the masked form (a branch on G there
// cost its 4-token passes 4%).   scales: the row's f16 scales (quant_scales_offset)
template <DType kType, bool kWholeGroup>
inline __m512 group_weight_scales(const uint8_t* scales, int64_t b0, int64_t G) {
  if constexpr (quant_scale_blocks(kType) == 1) {
    if constexpr (kWholeGroup) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + b0 * 2)));
    }
    const __mmask16 mb = static_cast<__mmask16>(G == 16 ? 0xFFFF : (1u << G) - 1);
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mb, scales + b0 * 2));
  } else {
    static_assert(quant_scale_blocks(kType) == 4);
    const __m512i spread4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    if constexpr (kWholeGroup) {
      return _mm512_permutexvar_ps(
          spread4, _mm512_castps128_ps512(_mm_cvtph_ps(
                       _mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales + b0 / 2)))));
    }
    const __mmask16 ms = static_cast<__mmask16>((1u << (G / 4)) - 1);
    return _mm512_permutexvar_ps(spread4,
                                 _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(ms, scales + b0 / 2)));
  }
}

// Rows x tokens over all n_in inputs, a group of 16 blocks at a time (dtype.h): per group and
// row, int8: 8 loads of 64 bytes, each meeting one step of the token's arranged bytes (xa) in a
// VPDPBUSD; int4: 4 loads, their low and high nibbles meeting steps 2s and 2s + 1. The int32
// lanes start at -offset x the blocks' sums of x; then one conversion and one FMA by the 16 scale
// products. A last group of G < 16 blocks reads 4 G bytes per step (masked; the other lanes stay
// 0). With up to 2 tokens, two registers per row and token split the sums (two dependency chains
// of 4 instead of one of 8). int4 with split sums takes each high nibble in place (v & 0xF0, 16
// times its value: no shift per load) into sum_b, shifted right by 4 once per group (exact: a
// multiple of 16), so the int32 sums, and the results, are those of shifting every load.
template <DType kType, int R, int T>
void rows_pass(const uint8_t* xa, int64_t n_in, const uint8_t* const* rows, float (*out)[kTokens]) {
  constexpr bool kInt4 = is_int4(kType);
  constexpr int64_t kGroupBytes = kInt4 ? 256 : 512;
  constexpr int kShift = kInt4 ? 3 : 7;  // the offset 8 or 128
  const size_t xab = arranged_activation_row_bytes(n_in);
  const int64_t nb = n_in / kQuantBlock;
  const int64_t w_scales = quant_scales_offset(kType, n_in);
  constexpr bool kSplit = T <= 2;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i high4 = _mm512_set1_epi8(static_cast<char>(0xF0));
  for (int64_t g = 0; g * kQuantGroupBlocks < nb; ++g) {
    const int64_t G = std::min<int64_t>(kQuantGroupBlocks, nb - g * kQuantGroupBlocks);
    const __mmask64 m = G == 16 ? ~0ULL : (1ULL << (4 * G)) - 1;  // a step's 4 G bytes
    const __mmask16 mb = static_cast<__mmask16>(G == 16 ? 0xFFFF : (1u << G) - 1);
    const int64_t b0 = g * kQuantGroupBlocks;
    __m512i sum_a[R][T], sum_b[kSplit ? R : 1][kSplit ? T : 1];
    __m512 sx[T];
    for (int t = 0; t < T; ++t) {
      const uint8_t* xt = xa + t * xab;
      sx[t] = _mm512_maskz_loadu_ps(mb, xt + n_in + b0 * 4);
      const __m512i start = _mm512_sub_epi32(
          _mm512_setzero_si512(),
          _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mb, xt + n_in + nb * 4 + b0 * 4), kShift));
      for (int r = 0; r < R; ++r) {
        sum_a[r][t] = start;
        if constexpr (kSplit) sum_b[r][t] = _mm512_setzero_si512();
      }
    }
    for (int64_t s = 0; s < 4; ++s) {  // int4: step s; int8: steps 2s and 2s + 1
      __m512i x0[T], x1[T];
      for (int t = 0; t < T; ++t) {
        const uint8_t* xg = xa + t * xab + g * 512 + 8 * G * s;
        x0[t] = _mm512_maskz_loadu_epi8(m, xg);
        x1[t] = _mm512_maskz_loadu_epi8(m, xg + 4 * G);
      }
      for (int r = 0; r < R; ++r) {
        __m512i w0, w1;
        if constexpr (kInt4) {
          const uint8_t* p = rows[r] + g * kGroupBytes + 4 * G * s;
          const __m512i v = _mm512_maskz_loadu_epi8(m, p);
          _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
          w0 = _mm512_and_si512(v, low4);
          if constexpr (kSplit) {
            w1 = _mm512_and_si512(v, high4);  // 16 x the high nibble
          } else {
            w1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
          }
        } else {
          const uint8_t* p = rows[r] + g * kGroupBytes + 8 * G * s;
          w0 = _mm512_maskz_loadu_epi8(m, p);
          w1 = _mm512_maskz_loadu_epi8(m, p + 4 * G);
          _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + 64, _MM_HINT_T0);
        }
        for (int t = 0; t < T; ++t) {
          sum_a[r][t] = _mm512_dpbusd_epi32(sum_a[r][t], w0, x0[t]);
          if constexpr (kSplit) {
            sum_b[r][t] = _mm512_dpbusd_epi32(sum_b[r][t], w1, x1[t]);
          } else {
            sum_a[r][t] = _mm512_dpbusd_epi32(sum_a[r][t], w1, x1[t]);
          }
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512 sw = group_weight_scales<kType, false>(rows[r] + w_scales, b0, G);
      for (int t = 0; t < T; ++t) {
        __m512i sum = sum_a[r][t];
        if constexpr (kSplit && kInt4) {
          sum = _mm512_add_epi32(sum, _mm512_srai_epi32(sum_b[r][t], 4));
        } else if constexpr (kSplit) {
          sum = _mm512_add_epi32(sum, sum_b[r][t]);
        }
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(sw, sx[t]), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
}

// One token, every group full (n_in a multiple of 16 blocks): rows_pass<kType, R, 1> with the
// group's shape known at compile time (plain loads, constant offsets, the row pointers in
// registers); int4 takes each 64-byte load once for both nibbles (the compiler otherwise folds
// the load into each AND: two loads where Zen 4 issues one 64-byte load per cycle). The same
// operations on the same lanes in the same order as rows_pass, so the same bits. kPrefetch: bytes
// ahead each row is prefetched into L1; kL2Prefetch: into L2 (0: not).
// kRowOuter: a group is read row after row (each row's 4 steps, then the next row) instead of
// step after step across the rows. Row after row keeps one row's two sums and the group's 8
// activation loads in registers (the step order leaves the compiler copying and spilling the
// 16 sums): 1.09-1.15x in cache on Zen 4, and 1.03-1.12x from memory for one input group pair
// (n_in 1024: the lm_head's 1024 x 151936), but 0.96-0.97x from memory for longer rows (3072 x
// 1024), where the step order keeps more rows' loads close together. End to end (int4g128 with
// quantized embeddings, Qwen3-0.6B shape, Zen 4, old and new builds alternated): 1.007-1.027x.
template <DType kType, int R, int kPrefetch, int kL2Prefetch, bool kRowOuter>
void rows_pass_one_token(const uint8_t* xa, int64_t n_in, const uint8_t* const* rows,
                         float (*out)[kTokens]) {
  constexpr bool kInt4 = is_int4(kType);
  constexpr int64_t kGroupBytes = kInt4 ? 256 : 512;
  constexpr int kShift = kInt4 ? 3 : 7;  // the offset 8 or 128
  const int64_t nb = n_in / kQuantBlock, n_groups = nb / kQuantGroupBlocks;
  const uint8_t* const xs = xa + n_in;             // the blocks' scales of x, f32 [nb]
  const uint8_t* const xsum = xa + n_in + nb * 4;  // the blocks' sums of x, int32 [nb]
  const int64_t w_scales = quant_scales_offset(kType, n_in);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i high4 = _mm512_set1_epi8(static_cast<char>(0xF0));
  auto prefetch = [](const uint8_t* line) {
    _mm_prefetch(reinterpret_cast<const char*>(line) + kPrefetch, _MM_HINT_T0);
    if constexpr (kL2Prefetch > 0) {
      _mm_prefetch(reinterpret_cast<const char*>(line) + kL2Prefetch, _MM_HINT_T1);
    }
  };
  // Step s of group g of row p: its weights against the step's activations x0 and x1 (int4:
  // step s; int8: steps 2s and 2s + 1).
  auto step = [&](const uint8_t* p, int64_t g, int s, __m512i x0, __m512i x1, __m512i& sa,
                  __m512i& sb) {
    if constexpr (kInt4) {
      const uint8_t* w = p + g * kGroupBytes + 64 * s;
      __m512i v = _mm512_loadu_si512(w);
      __asm__("" : "+v"(v));  // keeps v in a register: one load for both ANDs
      prefetch(w);
      sa = _mm512_dpbusd_epi32(sa, _mm512_and_si512(v, low4), x0);
      sb = _mm512_dpbusd_epi32(sb, _mm512_and_si512(v, high4), x1);  // 16 x high
    } else {
      const uint8_t* w = p + g * kGroupBytes + 128 * s;
      prefetch(w);
      prefetch(w + 64);
      sa = _mm512_dpbusd_epi32(sa, _mm512_loadu_si512(w), x0);
      sb = _mm512_dpbusd_epi32(sb, _mm512_loadu_si512(w + 64), x1);
    }
  };
  // acc += the group's sums (sa, sb) times its scale products.
  auto fold = [&](const uint8_t* p, int64_t g, __m512 sx, __m512i sa, __m512i sb, __m512& acc) {
    const __m512 sw =
        group_weight_scales<kType, true>(p + w_scales, g * kQuantGroupBlocks, kQuantGroupBlocks);
    const __m512i sum =
        kInt4 ? _mm512_add_epi32(sa, _mm512_srai_epi32(sb, 4)) : _mm512_add_epi32(sa, sb);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(sw, sx), acc);
  };
  const uint8_t* p[R];
  __m512 acc[R];
  for (int r = 0; r < R; ++r) {
    p[r] = rows[r];
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < n_groups; ++g) {
    const uint8_t* xg = xa + g * 512;  // step s: x0 at xg + 128 s, x1 64 bytes after it
    const __m512 sx = _mm512_loadu_ps(xs + g * 64);
    const __m512i start = _mm512_sub_epi32(
        _mm512_setzero_si512(), _mm512_slli_epi32(_mm512_loadu_si512(xsum + g * 64), kShift));
    if constexpr (kRowOuter) {
      __m512i x0[4], x1[4];
      for (int s = 0; s < 4; ++s) {
        x0[s] = _mm512_loadu_si512(xg + 128 * s);
        x1[s] = _mm512_loadu_si512(xg + 128 * s + 64);
      }
      for (int r = 0; r < R; ++r) {
        __m512i sa = start, sb = _mm512_setzero_si512();
        for (int s = 0; s < 4; ++s) step(p[r], g, s, x0[s], x1[s], sa, sb);
        fold(p[r], g, sx, sa, sb, acc[r]);
      }
    } else {
      __m512i sa[R], sb[R];
      for (int r = 0; r < R; ++r) {
        sa[r] = start;
        sb[r] = _mm512_setzero_si512();
      }
      for (int s = 0; s < 4; ++s) {
        const __m512i x0 = _mm512_loadu_si512(xg + 128 * s);
        const __m512i x1 = _mm512_loadu_si512(xg + 128 * s + 64);
        for (int r = 0; r < R; ++r) step(p[r], g, s, x0, x1, sa[r], sb[r]);
      }
      for (int r = 0; r < R; ++r) fold(p[r], g, sx, sa[r], sb[r], acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r][0] = _mm512_reduce_add_ps(acc[r]);
}

// One token with every group full: rows_pass_one_token, R rows at a time, row after row for
// up to kRowOuterGroups groups of inputs.
template <DType kType, int R, int kPrefetch, int kL2Prefetch, int kRowOuterGroups>
void gemv_one_token(const uint8_t* xa, int64_t n_in, const uint8_t* w, int64_t o_begin,
                    int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const bool row_outer = n_in <= kRowOuterGroups * kQuantBlock * kQuantGroupBlocks;
  gemv_row_blocks<R, kTokens>(
      w, row_bytes(kType, n_in), 1, o_begin, o_end, bias, y, ldy,
      [&](int, int64_t, const uint8_t* const* rows, float(*out)[kTokens]) {
        if (row_outer) {
          rows_pass_one_token<kType, R, kPrefetch, kL2Prefetch, true>(xa, n_in, rows, out);
        } else {
          rows_pass_one_token<kType, R, kPrefetch, kL2Prefetch, false>(xa, n_in, rows, out);
        }
      });
}

// The one-token GEMV with AMD's tuning or the other one (kOneToken*Amd above).
template <DType kType>
void one_token_tuned(const uint8_t* xa, int64_t n_in, const uint8_t* w, bool amd_tuning,
                     int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  if (amd_tuning) {
    gemv_one_token<kType, kOneTokenRowsAmd, kOneTokenPrefetchAmd, kOneTokenL2PrefetchAmd,
                   kOneTokenRowOuterGroupsAmd>(xa, n_in, w, o_begin, o_end, bias, y, ldy);
  } else {
    gemv_one_token<kType, kRows, kPrefetchBytes, 0, 0>(xa, n_in, w, o_begin, o_end, bias, y, ldy);
  }
}

template <DType kType>
void gemv_vnni(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w, int64_t o_begin,
               int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t xab = arranged_activation_row_bytes(n_in);
  if (n_tokens == 1 && n_in % (kQuantBlock * kQuantGroupBlocks) == 0) {
    static const bool amd = amd_cpu();
    return one_token_tuned<kType>(xq, n_in, w, amd, o_begin, o_end, bias, y, ldy);
  }
  gemv_row_blocks<kRows, kTokens>(
      w, row_bytes(kType, n_in), n_tokens, o_begin, o_end, bias, y, ldy,
      [&](int nt, int64_t t0, const uint8_t* const* rows, float(*out)[kTokens]) {
        const uint8_t* xt = xq + static_cast<size_t>(t0) * xab;
        switch (nt) {
          case 1:
            return rows_pass<kType, kRows, 1>(xt, n_in, rows, out);
          case 2:
            return rows_pass<kType, kRows, 2>(xt, n_in, rows, out);
          case 3:
            return rows_pass<kType, kRows, 3>(xt, n_in, rows, out);
          default:
            return rows_pass<kType, kRows, 4>(xt, n_in, rows, out);
        }
      });
}

}  // namespace

void gemv_one_token_vnni(const uint8_t* xa, int64_t n_in, const uint8_t* w, DType dtype,
                         bool amd_tuning, int64_t o_begin, int64_t o_end, const float* bias,
                         float* y, int64_t ldy) {
  if (dtype == DType::kInt4) {
    one_token_tuned<DType::kInt4>(xa, n_in, w, amd_tuning, o_begin, o_end, bias, y, ldy);
  } else if (dtype == DType::kInt4G128) {
    one_token_tuned<DType::kInt4G128>(xa, n_in, w, amd_tuning, o_begin, o_end, bias, y, ldy);
  } else {
    one_token_tuned<DType::kInt8>(xa, n_in, w, amd_tuning, o_begin, o_end, bias, y, ldy);
  }
}

void gemv_quantized_vnni(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                         DType dtype, int64_t o_begin, int64_t o_end, const float* bias, float* y,
                         int64_t ldy) {
  if (dtype == DType::kInt4) {
    gemv_vnni<DType::kInt4>(xq, n_tokens, n_in, w, o_begin, o_end, bias, y, ldy);
  } else if (dtype == DType::kInt4G128) {
    gemv_vnni<DType::kInt4G128>(xq, n_tokens, n_in, w, o_begin, o_end, bias, y, ldy);
  } else {
    gemv_vnni<DType::kInt8>(xq, n_tokens, n_in, w, o_begin, o_end, bias, y, ldy);
  }
}

}  // namespace shardlm::cpu
