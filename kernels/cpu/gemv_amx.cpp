// AMX GEMV (see gemv_amx.h). Compiled with -mamx-tile -mamx-bf16 and AVX-512 flags.
// Tiles: C 0-3 (16 outputs x n_tokens f32), A 4-5 (16 weight rows x 32 bf16, loaded in place at
// the row stride, alternating so a load overlaps the previous product), B 6-7 (16 k pairs x
// n_tokens x 2 bf16, alternating by k block). A group of up to 4 row blocks (64 rows) shares each
// B tile; the lines two k blocks ahead are prefetched into L1 as it computes.
// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_*
// placeholders; GCC bug 105593, fixed in GCC 13). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/cpu/gemv_amx.h"

#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/amx_tile_config.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/simd_avx512.h"

namespace shardlm::cpu {

namespace {

constexpr int kMaxBlocks = 4;  // row blocks (of 16) per group: C tiles 0-3
constexpr int64_t kAhead = 2;  // k blocks prefetched ahead

// C and B tiles n_tokens columns wide; tile 0 (C) and 4 (A) `rows_0` rows (16, or fewer for the
// last row block of a matrix whose n_out is not a multiple of 16).
void configure(int64_t n_tokens, int rows_0) {
  AmxTileConfig cfg;
  const auto cols = static_cast<uint16_t>(n_tokens * 4);
  for (int i = 0; i < 8; ++i) cfg.rows[i] = 16;
  for (int i : {0, 1, 2, 3, 6, 7}) cfg.colsb[i] = cols;
  cfg.colsb[4] = cfg.colsb[5] = 64;
  cfg.rows[0] = cfg.rows[4] = static_cast<uint8_t>(rows_0);
  _tile_loadconfig(&cfg);
}

// The tile intrinsics take literal tile numbers (they are pasted into the instruction text), so
// each block's code is spelled out: block r uses C tile r and A tile 4 + r % 2.
#define SHARDLM_AMX_BLOCK(C, A, B)                            \
  do {                                                        \
    _tile_loadd(A, w + (C)*block_stride + kb * 32, a_stride); \
    _tile_dpbf16ps(C, A, B);                                  \
  } while (0)

template <int NB>
inline void k_step_b6(const uint16_t* w, int64_t block_stride, int64_t a_stride, int64_t kb) {
  SHARDLM_AMX_BLOCK(0, 4, 6);
  if constexpr (NB > 1) SHARDLM_AMX_BLOCK(1, 5, 6);
  if constexpr (NB > 2) SHARDLM_AMX_BLOCK(2, 4, 6);
  if constexpr (NB > 3) SHARDLM_AMX_BLOCK(3, 5, 6);
}

template <int NB>
inline void k_step_b7(const uint16_t* w, int64_t block_stride, int64_t a_stride, int64_t kb) {
  SHARDLM_AMX_BLOCK(0, 4, 7);
  if constexpr (NB > 1) SHARDLM_AMX_BLOCK(1, 5, 7);
  if constexpr (NB > 2) SHARDLM_AMX_BLOCK(2, 4, 7);
  if constexpr (NB > 3) SHARDLM_AMX_BLOCK(3, 5, 7);
}
#undef SHARDLM_AMX_BLOCK

struct Call {
  const uint16_t* xt;
  int64_t n_tokens, n_in;
  const float* bias;
  float* y;
  int64_t ldy;
};

// Rows [o, o + 16 (NB - 1) + rows_last) against every token. Each k step prefetches into L1
// the lines kAhead k blocks on, running into the first rows_next rows after the group (tile
// loads of lines that are not in L1 wait for them one tile at a time).   w [n_out, n_in] bf16
template <int NB>
void row_group(const Call& c, const uint16_t* w, int64_t o, int rows_last, int64_t rows_next) {
  const int64_t n_kb = c.n_in / 32;
  const int64_t a_stride = c.n_in * 2, block_stride = 16 * c.n_in;
  const int64_t b_stride = c.n_tokens * 4, b_tile = 32 * c.n_tokens;  // bytes, elements
  const uint16_t* wo = w + o * c.n_in;
  const int64_t rows_here = 16 * (NB - 1) + rows_last;
  _tile_zero(0);
  if constexpr (NB > 1) _tile_zero(1);
  if constexpr (NB > 2) _tile_zero(2);
  if constexpr (NB > 3) _tile_zero(3);
  auto prefetch = [&](int64_t kb) {
    int64_t k = kb + kAhead, rows = rows_here;
    const uint16_t* base = wo;
    if (k >= n_kb) {
      k -= n_kb;
      base = wo + rows_here * c.n_in;
      rows = rows_next;
      if (k >= n_kb) return;
    }
    for (int64_t r = 0; r < rows; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(base + r * c.n_in + k * 32), _MM_HINT_T0);
    }
  };
  int64_t kb = 0;
  for (; kb + 2 <= n_kb; kb += 2) {
    _tile_loadd(6, c.xt + kb * b_tile, b_stride);
    k_step_b6<NB>(wo, block_stride, a_stride, kb);
    prefetch(kb);
    _tile_loadd(7, c.xt + (kb + 1) * b_tile, b_stride);
    k_step_b7<NB>(wo, block_stride, a_stride, kb + 1);
    prefetch(kb + 1);
  }
  if (kb < n_kb) {
    _tile_loadd(6, c.xt + kb * b_tile, b_stride);
    k_step_b6<NB>(wo, block_stride, a_stride, kb);
    prefetch(kb);
  }
  // Each C tile stored at a 64-byte row stride (16 outputs x 16 lanes, columns past n_tokens
  // unused), turned into one vector of 16 outputs per token.
  alignas(64) float out[kMaxBlocks][16 * 16];
  _tile_stored(0, out[0], 64);
  if constexpr (NB > 1) _tile_stored(1, out[1], 64);
  if constexpr (NB > 2) _tile_stored(2, out[2], 64);
  if constexpr (NB > 3) _tile_stored(3, out[3], 64);
  for (int r = 0; r < NB; ++r) {
    const int rows = r == NB - 1 ? rows_last : 16;
    const int64_t row0 = o + 16 * r;
    const __mmask16 m = static_cast<__mmask16>((1u << rows) - 1u);
    const __m512 b = c.bias ? _mm512_maskz_loadu_ps(m, c.bias + row0) : _mm512_setzero_ps();
    if (c.n_tokens == 1) {  // column 0 of the tile: every 16th float
      const __m512i idx =
          _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                             _mm512_set1_epi32(16));
      const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, out[r], 4);
      _mm512_mask_storeu_ps(c.y + row0, m, _mm512_add_ps(v, b));
      continue;
    }
    __m512 v[16];
    for (int i = 0; i < 16; ++i) v[i] = _mm512_load_ps(out[r] + 16 * i);
    simd512::transpose16x16(v);  // v[t] = token t's 16 outputs
    for (int64_t t = 0; t < c.n_tokens; ++t) {
      _mm512_mask_storeu_ps(c.y + t * c.ldy + row0, m, _mm512_add_ps(v[t], b));
    }
  }
}

}  // namespace

bool amx_gemv_supported(int64_t n_in) {
  static const bool tiles = enable_amx();
  return tiles && n_in > 0 && n_in % 32 == 0;
}

size_t amx_gemv_packed_x_bytes(int64_t n_tokens, int64_t n_in) {
  return static_cast<size_t>(n_tokens * n_in) * sizeof(uint16_t);
}

void amx_gemv_pack_x(const uint16_t* xb, int64_t n_tokens, int64_t n_in, uint16_t* xt) {
  const auto* x32 = reinterpret_cast<const uint32_t*>(xb);  // bf16 pairs
  auto* t32 = reinterpret_cast<uint32_t*>(xt);
  const int64_t n_pairs = n_in / 2;
  for (int64_t p = 0; p < n_pairs; ++p) {  // pair p = (kb, r): B row r of k block kb
    for (int64_t t = 0; t < n_tokens; ++t) t32[p * n_tokens + t] = x32[t * n_pairs + p];
  }
}

void amx_gemv_rows(const uint16_t* xt, int64_t n_tokens, int64_t n_in, const uint16_t* w,
                   int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  if (o_end <= o_begin) return;
  const Call c{xt, n_tokens, n_in, bias, y, ldy};
  const int64_t full_end = o_begin + (o_end - o_begin) / 16 * 16;
  const int rows_tail = static_cast<int>(o_end - full_end);
  configure(n_tokens, 16);
  constexpr int64_t kGroup = 16 * kMaxBlocks;
  auto after = [&](int64_t row) { return std::min<int64_t>(kGroup, o_end - row); };
  int64_t o = o_begin;
  for (; o + kGroup <= full_end; o += kGroup) {
    row_group<kMaxBlocks>(c, w, o, 16, after(o + kGroup));
  }
  switch ((full_end - o) / 16) {
    case 3:
      row_group<3>(c, w, o, 16, rows_tail);
      break;
    case 2:
      row_group<2>(c, w, o, 16, rows_tail);
      break;
    case 1:
      row_group<1>(c, w, o, 16, rows_tail);
      break;
    default:
      break;
  }
  if (rows_tail > 0) {
    configure(n_tokens, rows_tail);  // tile 0 (C) and 4 (A) hold only the rows that exist
    row_group<1>(c, w, full_end, rows_tail, 0);
  }
  _tile_release();
}

}  // namespace shardlm::cpu
