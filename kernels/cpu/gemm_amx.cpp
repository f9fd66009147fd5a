// AMX bf16 GEMM (see gemm_amx.h). Compiled with -mamx-tile -mamx-bf16 and AVX-512 flags.
// Register blocking: 3 A tiles (48 weight rows) x 1 B tile (16 tokens) -> 3 f32 C tiles, with B
// double-buffered (row_blocks). Cache blocking: a group of weight rows (~1 MiB) is copied
// into contiguous tiles once (pack_w_group) and reused from L2 for every 16-token block; each
// token block's packed activations (n_split * 16 * n_in * 2 bytes) are reused from L1/L2
// across the group's row blocks. Measured on one core (512 tokens, 3 splits): 1.35-1.55x the
// tile throughput of the previous 2x2 register blocking with A tiles read in place
// (docs/benchmarks.md).
#include "kernels/cpu/gemm_amx.h"

// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_*
// placeholders; GCC bug 105593, fixed in GCC 13). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/amx_tile_config.h"
#if defined(SHARDLM_CPU_BF16_DOT)
#include "kernels/cpu/gemv_bf16_dot.h"
#endif
#include "kernels/cpu/gemv_quantized.h"
#include "kernels/cpu/simd_avx512.h"
#include "runtime/core/quant.h"

namespace shardlm::cpu {

namespace {

constexpr int kBlocks = 3;                // 16-row weight blocks per register block
constexpr int64_t kGroupBytes = 1 << 20;  // packed weight rows per group (L2, with x)
constexpr size_t kTileBytes = 1024;       // 16 rows x 64 bytes

// Byte offset of the B tile (token block tb, k block kb, split part p) in the packed
// activations. The tiles one k step of a 32-token block pair needs (2 blocks x n_split parts)
// are contiguous, so the kernel reads the packed activations as one sequential stream:
// [tb / 2][kb][part][tb % 2].
inline size_t tile_offset(int64_t tb, int64_t kb, int p, int64_t n_kb, int n_split) {
  return static_cast<size_t>((((tb / 2) * n_kb + kb) * n_split + p) * 2 + tb % 2) * kTileBytes;
}

// Tiles 0-2: C (f32 16x16), 3-5: A (16 rows x 32 bf16), 6-7: B (16 k pairs x 16 tokens x 2).
void configure_tiles() {
  AmxTileConfig cfg;
  for (int i = 0; i < 8; ++i) {
    cfg.colsb[i] = 64;
    cfg.rows[i] = 16;
  }
  _tile_loadconfig(&cfg);
}

// One 32-bit lane per token j: bf16 parts of x[k], x[k + 1] for k = 2r (r = lane of the result).
// Splits 32 floats into n_split bf16 parts by truncation: hi = top 16 bits, then the exact
// remainder, etc.; 3 parts reproduce x exactly.
inline void split32(const float* x, int64_t valid, int n_split, __m512i parts[3]) {
  __m512 a = _mm512_maskz_loadu_ps(valid > 0 ? simd512::tail_mask16(valid) : 0, x);
  __m512 b = _mm512_maskz_loadu_ps(valid > 16 ? simd512::tail_mask16(valid - 16) : 0, x + 16);
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  for (int p = 0; p < n_split; ++p) {
    const __m512i ai = _mm512_castps_si512(a), bi = _mm512_castps_si512(b);
    // The top 16 bits of each f32, narrowed to 16-bit lanes, in element order k = 0..31.
    const __m256i lo16 = _mm512_cvtepi32_epi16(_mm512_srli_epi32(ai, 16));
    const __m256i hi16 = _mm512_cvtepi32_epi16(_mm512_srli_epi32(bi, 16));
    parts[p] = _mm512_inserti64x4(_mm512_castsi256_si512(lo16), hi16, 1);
    // Remainders: exact in f32 (x minus its truncation to 8 significant bits).
    a = _mm512_sub_ps(a, _mm512_castsi512_ps(_mm512_and_si512(ai, hi_mask)));
    b = _mm512_sub_ps(b, _mm512_castsi512_ps(_mm512_and_si512(bi, hi_mask)));
  }
}

// C tiles (rows = 16 outputs, columns = 16 tokens) -> y[t, o] (+ bias), 16x16 at a time.
void store_tile(const float* c /* [16][16] */, int64_t t0, int64_t n_tokens, int64_t o0,
                int64_t n_out, const float* bias, float* y) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(c + i * 16);
  simd512::transpose16x16(r);  // r[j] = token j's 16 outputs
  const __m512 b = bias ? _mm512_loadu_ps(bias + o0) : _mm512_setzero_ps();
  for (int j = 0; j < 16 && t0 + j < n_tokens; ++j) {
    _mm512_storeu_ps(y + (t0 + j) * n_out + o0, _mm512_add_ps(r[j], b));
  }
}

// Copies weight rows [g, g_end) into A tiles, ordered [16-row block][k block]: every tile is
// 1 KiB contiguous, so a tile load reads 16 consecutive lines instead of 16 lines a row apart.
// Quantized rows are dequantized into `row` (n_in floats) and rounded to bf16 on the way.
//   w [n_out rows] of dtype -> wp [(g_end - g) / 16, n_in / 32, 16, 32] bf16
void pack_w_group(const void* w, DType dtype, int64_t n_in, int64_t g, int64_t g_end, uint8_t* wp,
                  float* row) {
  const int64_t n_kb = n_in / 32;
  const size_t rb = row_bytes(dtype, n_in);
  for (int64_t o = g; o < g_end; ++o) {
    uint8_t* dst = wp + ((o - g) / 16 * n_kb * 16 + (o - g) % 16) * 64;
    const auto* src = static_cast<const uint8_t*>(w) + static_cast<size_t>(o) * rb;
    if (dtype == DType::kBF16) {
      for (int64_t kb = 0; kb < n_kb; ++kb) {
        _mm512_store_si512(dst + kb * kTileBytes, _mm512_loadu_si512(src + kb * 64));
      }
      continue;
    }
    dequantize_range(Isa::kAvx512, dtype, src, n_in, 0, n_in, row);
    for (int64_t kb = 0; kb < n_kb; ++kb) {
      auto* tile_row = reinterpret_cast<uint16_t*>(dst + kb * kTileBytes);
#if defined(SHARDLM_CPU_BF16_DOT)
      round_to_bf16_avx512(row + kb * 32, 32, tile_row);
#else
      for (int i = 0; i < 32; ++i) tile_row[i] = f32_to_bf16(row[kb * 32 + i]);
#endif
    }
  }
}

struct Operands {
  const uint8_t* xb;  // packed activations (amx_pack_x)
  int64_t n_tokens, n_kb;
  int n_split;
  int64_t n_out;
  const float* bias;
  float* y;
};

// C tile T += A tile 3 + T times B tile 6 or 7 (the tile intrinsics take literal numbers).
template <int T>
inline void tdp_into(int b) {
  if constexpr (T == 0) {
    if (b == 0) {
      _tile_dpbf16ps(0, 3, 6);
    } else {
      _tile_dpbf16ps(0, 3, 7);
    }
  } else if constexpr (T == 1) {
    if (b == 0) {
      _tile_dpbf16ps(1, 4, 6);
    } else {
      _tile_dpbf16ps(1, 4, 7);
    }
  } else {
    if (b == 0) {
      _tile_dpbf16ps(2, 5, 6);
    } else {
      _tile_dpbf16ps(2, 5, 7);
    }
  }
}

// NB 16-row weight blocks x one 16-token block: NB C tiles, NB A tiles loaded once per k block
// and used for every split part, and B double-buffered in tiles 6 and 7. AMX tiles are not
// renamed, so a load into the tile the previous TDPBF16PS read must wait for it; alternating
// the B tile lets the next part's load overlap the current part's products.
//   wp: the blocks' packed tiles [NB][n_kb][16][32] bf16; rows [o, o + 16 NB), tokens of tb
template <int NB>
void row_blocks(const Operands& op, const uint8_t* wp, int64_t tb, int64_t o) {
  _tile_zero(0);
  if constexpr (NB > 1) _tile_zero(1);
  if constexpr (NB > 2) _tile_zero(2);
  const size_t block = static_cast<size_t>(op.n_kb) * kTileBytes;
  int b = 0;
  for (int64_t kb = 0; kb < op.n_kb; ++kb) {
    const uint8_t* a = wp + kb * kTileBytes;
    _tile_loadd(3, a, 64);
    if constexpr (NB > 1) _tile_loadd(4, a + block, 64);
    if constexpr (NB > 2) _tile_loadd(5, a + 2 * block, 64);
    for (int p = 0; p < op.n_split; ++p, b ^= 1) {
      const uint8_t* bt = op.xb + tile_offset(tb, kb, p, op.n_kb, op.n_split);
      if (b == 0) {
        _tile_loadd(6, bt, 64);
      } else {
        _tile_loadd(7, bt, 64);
      }
      tdp_into<0>(b);
      if constexpr (NB > 1) tdp_into<1>(b);
      if constexpr (NB > 2) tdp_into<2>(b);
    }
  }
  alignas(64) float c[16 * 16];
  _tile_stored(0, c, 64);
  store_tile(c, tb * 16, op.n_tokens, o, op.n_out, op.bias, op.y);
  if constexpr (NB > 1) {
    _tile_stored(1, c, 64);
    store_tile(c, tb * 16, op.n_tokens, o + 16, op.n_out, op.bias, op.y);
  }
  if constexpr (NB > 2) {
    _tile_stored(2, c, 64);
    store_tile(c, tb * 16, op.n_tokens, o + 32, op.n_out, op.bias, op.y);
  }
}

}  // namespace

bool amx_gemm_supported(DType dtype, int64_t n_in, int64_t n_out) {
  return (dtype == DType::kBF16 || is_quantized(dtype)) && n_in > 0 && n_in % 32 == 0 &&
         n_out > 0 && n_out % 16 == 0;
}

int64_t amx_token_blocks(int64_t n_tokens) {
  return (n_tokens + 31) / 32 * 2;
}

size_t amx_packed_x_bytes(int64_t n_tokens, int64_t n_in, int n_split) {
  return static_cast<size_t>(n_split) * static_cast<size_t>(amx_token_blocks(n_tokens)) *
         static_cast<size_t>(n_in / 32) * kTileBytes;
}

void amx_pack_x(const float* x, int64_t n_tokens, int64_t n_in, int n_split, int64_t tb_begin,
                int64_t tb_end, uint16_t* xb) {
  const int64_t n_kb = n_in / 32;
  for (int64_t tb = tb_begin; tb < tb_end; ++tb) {
    for (int64_t kb = 0; kb < n_kb; ++kb) {
      __m512 rows[3][16];
      for (int j = 0; j < 16; ++j) {
        const int64_t t = tb * 16 + j;
        __m512i parts[3];
        if (t < n_tokens) {
          split32(x + t * n_in + kb * 32, 32, n_split, parts);
        } else {
          parts[0] = parts[1] = parts[2] = _mm512_setzero_si512();
        }
        for (int p = 0; p < n_split; ++p) rows[p][j] = _mm512_castsi512_ps(parts[p]);
      }
      for (int p = 0; p < n_split; ++p) {
        simd512::transpose16x16(rows[p]);  // rows[p][r] = k pair r of tokens 0..15
        uint8_t* tile = reinterpret_cast<uint8_t*>(xb) + tile_offset(tb, kb, p, n_kb, n_split);
        for (int r = 0; r < 16; ++r)
          _mm512_storeu_ps(reinterpret_cast<float*>(tile + r * 64), rows[p][r]);
      }
    }
  }
}

size_t amx_packed_w_bytes(int64_t n_in) {
  const size_t row = (static_cast<size_t>(n_in) * sizeof(float) + 63) / 64 * 64;
  return static_cast<size_t>(amx_group_rows(n_in) * n_in) * 2 + row;
}

int64_t amx_group_rows(int64_t n_in) {
  const int64_t rows = kGroupBytes / (n_in * 2) / (16 * kBlocks) * (16 * kBlocks);
  return rows > 16 * kBlocks ? rows : 16 * kBlocks;
}

void amx_gemm_rows(const uint16_t* xb, int64_t n_tokens, int64_t n_in, int n_split, const void* w,
                   DType dtype, int64_t n_out, const float* bias, float* y, int64_t o_begin,
                   int64_t o_end, uint8_t* wp) {
  configure_tiles();
  const int64_t n_kb = n_in / 32;
  const int64_t n_tb = (n_tokens + 15) / 16;  // blocks holding at least one real token
  const int64_t group = amx_group_rows(n_in);
  const Operands ops{reinterpret_cast<const uint8_t*>(xb), n_tokens, n_kb, n_split, n_out, bias, y};
  for (int64_t g = o_begin; g < o_end; g += group) {
    const int64_t g_end = g + group < o_end ? g + group : o_end;
    pack_w_group(w, dtype, n_in, g, g_end, wp,
                 reinterpret_cast<float*>(wp + static_cast<size_t>(group * n_in) * 2));
    for (int64_t tb = 0; tb < n_tb; ++tb) {
      int64_t o = g;
      for (; o + 16 * kBlocks <= g_end; o += 16 * kBlocks) {
        row_blocks<kBlocks>(ops, wp + (o - g) / 16 * n_kb * kTileBytes, tb, o);
      }
      if (g_end - o == 32) row_blocks<2>(ops, wp + (o - g) / 16 * n_kb * kTileBytes, tb, o);
      if (g_end - o == 16) row_blocks<1>(ops, wp + (o - g) / 16 * n_kb * kTileBytes, tb, o);
    }
  }
  _tile_release();
}

}  // namespace shardlm::cpu
