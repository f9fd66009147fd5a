// AMX bf16 GEMM (see gemm_amx.h). Compiled with -mamx-tile -mamx-bf16 and AVX-512 flags.
// Register blocking: 2 A tiles (32 weight rows) x 2 B tiles (32 tokens) -> 4 f32 C tiles.
// Cache blocking: a group of kGroupRows weight rows (kGroupRows * n_in * 2 bytes, in L2) is
// reused for every 32-token block; each token block's packed activations (n_split * 32 * n_in
// * 2 bytes) are reused from L2 across the group's row pairs.
#include "kernels/cpu/gemm_amx.h"

// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_*
// placeholders; GCC bug 105593, fixed in GCC 13). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/simd_avx512.h"

namespace shardlm::cpu {

namespace {

constexpr int64_t kGroupRows = 128;
constexpr size_t kTileBytes = 1024;  // 16 rows x 64 bytes

// Byte offset of the B tile (token block tb, k block kb, split part p) in the packed
// activations. The tiles one k step of a 32-token block pair needs (2 blocks x n_split parts)
// are contiguous, so the kernel reads the packed activations as one sequential stream:
// [tb / 2][kb][part][tb % 2].
inline size_t tile_offset(int64_t tb, int64_t kb, int p, int64_t n_kb, int n_split) {
  return static_cast<size_t>((((tb / 2) * n_kb + kb) * n_split + p) * 2 + tb % 2) * kTileBytes;
}

struct TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 0-3: C (f32 16x16), 4-5: A (16 rows x 32 bf16), 6-7: B (16 k pairs x 16 tokens x 2).
void configure_tiles() {
  TileConfig cfg;
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

}  // namespace

bool amx_gemm_supported(DType dtype, int64_t n_in, int64_t n_out) {
  return dtype == DType::kBF16 && n_in > 0 && n_in % 32 == 0 && n_out > 0 && n_out % 16 == 0;
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

void amx_gemm_rows(const uint16_t* xb, int64_t n_tokens, int64_t n_in, int n_split,
                   const uint16_t* w, int64_t n_out, const float* bias, float* y, int64_t o_begin,
                   int64_t o_end) {
  configure_tiles();
  const int64_t n_kb = n_in / 32;
  const int64_t n_tb = amx_token_blocks(n_tokens);
  const size_t step = static_cast<size_t>(2 * n_split) * kTileBytes;  // one k block, 6 tiles
  const uint8_t* xbb = reinterpret_cast<const uint8_t*>(xb);
  const int64_t w_stride = n_in * 2;  // bytes per weight row
  alignas(64) float c[4][16 * 16];
  for (int64_t g = o_begin; g < o_end; g += kGroupRows) {
    const int64_t g_end = g + kGroupRows < o_end ? g + kGroupRows : o_end;
    for (int64_t tb = 0; tb < n_tb; tb += 2) {
      for (int64_t o = g; o < g_end; o += 32) {
        const bool two = o + 32 <= g_end;  // else a final block of 16 rows
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        const uint16_t* w0 = w + o * n_in;
        const uint16_t* w1 = w0 + 16 * n_in;
        const uint8_t* bk = xbb + tile_offset(tb, 0, 0, n_kb, n_split);
        for (int64_t kb = 0; kb < n_kb; ++kb, bk += step) {
          _tile_loadd(4, w0 + kb * 32, w_stride);
          if (two) _tile_loadd(5, w1 + kb * 32, w_stride);
          for (int p = 0; p < n_split; ++p) {
            _tile_loadd(6, bk + (2 * p) * kTileBytes, 64);
            _tile_loadd(7, bk + (2 * p + 1) * kTileBytes, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            if (two) {
              _tile_dpbf16ps(2, 5, 6);
              _tile_dpbf16ps(3, 5, 7);
            }
          }
        }
        _tile_stored(0, c[0], 64);
        _tile_stored(1, c[1], 64);
        store_tile(c[0], tb * 16, n_tokens, o, n_out, bias, y);
        store_tile(c[1], tb * 16 + 16, n_tokens, o, n_out, bias, y);
        if (two) {
          _tile_stored(2, c[2], 64);
          _tile_stored(3, c[3], 64);
          store_tile(c[2], tb * 16, n_tokens, o + 16, n_out, bias, y);
          store_tile(c[3], tb * 16 + 16, n_tokens, o + 16, n_out, bias, y);
        }
      }
    }
  }
  _tile_release();
}

}  // namespace shardlm::cpu
