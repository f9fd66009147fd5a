// The AVX-512 kernel table (F/BW/DQ/VL; compiled with those -m flags, selected at run time only
// when cpuid and the OS allow it). Hand-written: GEMV for f32/f16/bf16 rows, the f32 GEMM
// micro-kernel (12 tokens x 32 outputs) and its weight packing, dot/axpy, exp, norms and SwiGLU.
// bf16 rows are widened with one shift and one mask per 32 weights: the shift yields the
// even-indexed weights, the mask the odd ones, matched by even/odd halves of the activations.
// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_*
// placeholders; GCC bug 105593, fixed in GCC 13). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/cpu/generic_loops.h"
#include "kernels/cpu/simd_avx512.h"

namespace shardlm::cpu {

namespace {

constexpr int kMr = 12, kNr = 32;
constexpr int kGemvStreams = 8;  // GEMV rows in flight: 8 sequential streams per thread
// Software prefetch distance of every GEMV stream. The hardware prefetchers alone keep too few
// lines in flight per core here: prefetching 1 KiB (16 lines) ahead took the GEMV from ~85% to
// ~98% of the machine's read-stream bandwidth (docs/benchmarks.md).
constexpr int kPrefetchBytes = 1024;

inline void prefetch_ahead(const void* p) {
  _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
}

using simd512::hsum;
using simd512::tail_mask16;
using simd512::tail_mask32;

// 16 f8e4m3 values (dtype.h) as f32, exactly: each byte's exponent and mantissa moved into bits
// 7-13 of an f16 and its sign into bit 15 make the f16 whose value is 2^-8 of the byte's
// (normals and subnormals alike, both formats being IEEE-style), times 256 (exact); NaN
// (0x7f / 0xff) stays NaN.
inline __m512 f8e4m3x16_to_f32(__m128i b) {
  const __m256i y = _mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 7);  // sign at bit 14
  const __m256i h = _mm256_add_epi16(y, _mm256_and_si256(y, _mm256_set1_epi16(0x4000)));
  const __mmask16 nan =
      _mm_cmpeq_epi8_mask(_mm_and_si128(b, _mm_set1_epi8(0x7f)), _mm_set1_epi8(0x7f));
  const __m512 f = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f));
  return _mm512_mask_mov_ps(f, nan, _mm512_set1_ps(__builtin_nanf("")));
}

// R bf16 rows against one activation row. Each 32-block of x is split on the fly into its
// even- and odd-indexed halves (two permutes, shared by the R rows) to match the shift/mask
// widening of the weights.   x [n], w rows [R][n] at stride `ld`
template <int R>
inline void dot_rows_bf16(const float* x, const uint16_t* w, int64_t ld, int64_t n, float* out) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    const __m512 a = _mm512_loadu_ps(x + k), b = _mm512_loadu_ps(x + k + 16);
    const __m512 xe = _mm512_permutex2var_ps(a, even, b), xo = _mm512_permutex2var_ps(a, odd, b);
    for (int r = 0; r < R; ++r) {
      prefetch_ahead(w + r * ld + k);
      const __m512i v = _mm512_loadu_si512(w + r * ld + k);
      acc[r][0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi_mask)), xo, acc[r][1]);
    }
  }
  if (k < n) {
    const __m512 a = _mm512_maskz_loadu_ps(tail_mask16(n - k), x + k);
    const __m512 b = _mm512_maskz_loadu_ps(n - k > 16 ? tail_mask16(n - k - 16) : 0, x + k + 16);
    const __m512 xe = _mm512_permutex2var_ps(a, even, b), xo = _mm512_permutex2var_ps(a, odd, b);
    const __mmask32 m = tail_mask32(n - k);
    for (int r = 0; r < R; ++r) {
      const __m512i v = _mm512_maskz_loadu_epi16(m, w + r * ld + k);
      acc[r][0] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), xe, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi_mask)), xo, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(_mm512_add_ps(acc[r][0], acc[r][1]));
}

template <int R>
inline void dot_rows_f16(const float* x, const uint16_t* w, int64_t ld, int64_t n, float* out) {
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
    for (int r = 0; r < R; ++r) {
      const uint16_t* wr = w + r * ld + k;
      prefetch_ahead(wr);
      acc[r][0] = _mm512_fmadd_ps(
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr))), x0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + 16))), x1,
          acc[r][1]);
    }
  }
  for (; k < n; k += 16) {
    const __mmask16 m = tail_mask16(n - k);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, x + k);
    for (int r = 0; r < R; ++r) {
      const __m256i h = _mm256_maskz_loadu_epi16(m, w + r * ld + k);
      acc[r][0] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), x0, acc[r][0]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(_mm512_add_ps(acc[r][0], acc[r][1]));
}

template <int R>
inline void dot_rows_f32(const float* x, const float* w, int64_t ld, int64_t n, float* out) {
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
    for (int r = 0; r < R; ++r) {
      prefetch_ahead(w + r * ld + k);
      prefetch_ahead(w + r * ld + k + 16);
      acc[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * ld + k), x0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * ld + k + 16), x1, acc[r][1]);
    }
  }
  for (; k < n; k += 16) {
    const __mmask16 m = tail_mask16(n - k);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, x + k);
    for (int r = 0; r < R; ++r) {
      acc[r][0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + r * ld + k), x0, acc[r][0]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(_mm512_add_ps(acc[r][0], acc[r][1]));
}

template <int R>
inline void dot_rows(const float* x, const void* w, DType dtype, int64_t ld, int64_t n,
                     float* out) {
  switch (dtype) {
    case DType::kBF16:
      return dot_rows_bf16<R>(x, static_cast<const uint16_t*>(w), ld, n, out);
    case DType::kF16:
      return dot_rows_f16<R>(x, static_cast<const uint16_t*>(w), ld, n, out);
    case DType::kInt8:  // never here: quantized weights take matmul.cpp's own path
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF8E4M3:  // never here: a KV cache type
    case DType::kF32:
      return dot_rows_f32<R>(x, static_cast<const float*>(w), ld, n, out);
  }
}

template <int R>
void gemv_streams(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
                  int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t esz = generic::elem_size(dtype);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  float out[R];
  // The range is cut into R equal streams of rows; block i takes row i of every stream, so the
  // CPU sees R independent sequential streams (each in its own pages), which keeps more memory
  // requests in flight than one stream would.
  const int64_t q = (o_end - o_begin) / R;
  for (int64_t i = 0; i < q; ++i) {
    const int64_t o = o_begin + i;
    const void* wr = wb + static_cast<size_t>(o * n_in) * esz;
    for (int64_t t = 0; t < n_tokens; ++t) {
      dot_rows<R>(x + t * n_in, wr, dtype, q * n_in, n_in, out);
      for (int64_t r = 0; r < R; ++r) {
        y[t * ldy + o + r * q] = out[r] + (bias ? bias[o + r * q] : 0.0f);
      }
    }
  }
  for (int64_t o = o_begin + R * q; o < o_end; ++o) {
    const void* wr = wb + static_cast<size_t>(o * n_in) * esz;
    for (int64_t t = 0; t < n_tokens; ++t) {
      dot_rows<1>(x + t * n_in, wr, dtype, n_in, n_in, out);
      y[t * ldy + o] = out[0] + (bias ? bias[o] : 0.0f);
    }
  }
}

void gemv(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
          int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  gemv_streams<kGemvStreams>(x, n_tokens, n_in, w, dtype, o_begin, o_end, bias, y, ldy);
}

// 16 widened weights of one row starting at element k (masked past `n`).
inline __m512 load16(const void* w, DType dtype, int64_t k, int64_t n) {
  const __mmask16 m = tail_mask16(n - k);
  switch (dtype) {
    case DType::kBF16: {
      const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + k);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case DType::kF16:
      return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + k));
    case DType::kF8E4M3:  // KV rows (widen's tail)
      return f8e4m3x16_to_f32(_mm_maskz_loadu_epi8(m, static_cast<const uint8_t*>(w) + k));
    case DType::kInt8:  // never here: quantized weights take matmul.cpp's own path
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF32:
      break;
  }
  return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + k);
}

// Packs 16 rows x 16 columns at a time with an in-register transpose; rows past n_rows are 0.
void gemm_pack_w(const void* w, DType dtype, int64_t n_in, int64_t o, int64_t n_rows, int64_t k0,
                 int64_t kc, float* wp) {
  const size_t row_bytes = static_cast<size_t>(n_in) * generic::elem_size(dtype);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  for (int64_t jb = 0; jb < kNr; jb += 16) {
    for (int64_t k = 0; k < kc; k += 16) {
      __m512 r[16];
      for (int j = 0; j < 16; ++j) {
        r[j] = jb + j < n_rows ? load16(wb + static_cast<size_t>(o + jb + j) * row_bytes, dtype,
                                        k0 + k, k0 + kc)
                               : _mm512_setzero_ps();
      }
      simd512::transpose16x16(r);
      const int64_t kn = kc - k < 16 ? kc - k : 16;
      for (int64_t i = 0; i < kn; ++i) _mm512_storeu_ps(wp + (k + i) * kNr + jb, r[i]);
    }
  }
}

void gemm_tile(const float* xp, const float* wp, int64_t kc, float* c, int64_t ldc, int m_valid,
               int n_valid, bool accumulate, const float* bias) {
  __m512 acc[kMr][2];
  for (int m = 0; m < kMr; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 w0 = _mm512_loadu_ps(wp + k * kNr), w1 = _mm512_loadu_ps(wp + k * kNr + 16);
    const float* xk = xp + k * kMr;
    for (int m = 0; m < kMr; ++m) {
      const __m512 xv = _mm512_set1_ps(xk[m]);
      acc[m][0] = _mm512_fmadd_ps(xv, w0, acc[m][0]);
      acc[m][1] = _mm512_fmadd_ps(xv, w1, acc[m][1]);
    }
  }
  const __mmask16 m0 = tail_mask16(n_valid), m1 = n_valid > 16 ? tail_mask16(n_valid - 16) : 0;
  __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
  if (!accumulate && bias) {
    b0 = _mm512_maskz_loadu_ps(m0, bias);
    b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
  for (int m = 0; m < m_valid; ++m) {
    float* cr = c + m * ldc;
    if (accumulate) {
      b0 = _mm512_maskz_loadu_ps(m0, cr);
      b1 = _mm512_maskz_loadu_ps(m1, cr + 16);
    }
    _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(b0, acc[m][0]));
    _mm512_mask_storeu_ps(cr + 16, m1, _mm512_add_ps(b1, acc[m][1]));
  }
}

// Scores for up to 8 query rows x 32 keys per register tile (16 accumulators): broadcast one
// query element, multiply two vectors of transposed keys. kFull: all 32 keys valid (plain
// loads/stores; GCC keeps the accumulators in registers only without masks), else masked.
template <int R, bool kFull>
inline void scores_tile(const float* q, int64_t ldq, const float* kt, int64_t ldk, int64_t n_keys,
                        int64_t head_dim, float scale, float* s, int64_t lds) {
  const __mmask16 m0 = kFull ? 0xffff : tail_mask16(n_keys);
  const __mmask16 m1 = kFull ? 0xffff : n_keys > 16 ? tail_mask16(n_keys - 16) : 0;
  __m512 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t d = 0; d < head_dim; ++d) {
    const __m512 k0 =
        kFull ? _mm512_loadu_ps(kt + d * ldk) : _mm512_maskz_loadu_ps(m0, kt + d * ldk);
    const __m512 k1 =
        kFull ? _mm512_loadu_ps(kt + d * ldk + 16) : _mm512_maskz_loadu_ps(m1, kt + d * ldk + 16);
    for (int r = 0; r < R; ++r) {
      const __m512 qv = _mm512_set1_ps(q[r * ldq + d]);
      acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
    }
  }
  const __m512 vs = _mm512_set1_ps(scale);
  for (int r = 0; r < R; ++r) {
    if (kFull) {
      _mm512_storeu_ps(s + r * lds, _mm512_mul_ps(acc[r][0], vs));
      _mm512_storeu_ps(s + r * lds + 16, _mm512_mul_ps(acc[r][1], vs));
    } else {
      _mm512_mask_storeu_ps(s + r * lds, m0, _mm512_mul_ps(acc[r][0], vs));
      _mm512_mask_storeu_ps(s + r * lds + 16, m1, _mm512_mul_ps(acc[r][1], vs));
    }
  }
}

template <bool kFull>
void scores_block(const float* q, int64_t ldq, int64_t n_q, const float* kt, int64_t ldk,
                  int64_t nk, int64_t head_dim, float scale, float* s, int64_t lds) {
  int64_t i = 0;
  for (; i + 8 <= n_q; i += 8) {
    scores_tile<8, kFull>(q + i * ldq, ldq, kt, ldk, nk, head_dim, scale, s + i * lds, lds);
  }
  for (; i < n_q; ++i) {
    scores_tile<1, kFull>(q + i * ldq, ldq, kt, ldk, nk, head_dim, scale, s + i * lds, lds);
  }
}

void attn_scores(const float* q, int64_t ldq, int64_t n_q, const float* kt, int64_t ldk,
                 int64_t n_keys, int64_t head_dim, float scale, float* s, int64_t lds) {
  for (int64_t j = 0; j < n_keys; j += 32) {
    if (n_keys - j >= 32) {
      scores_block<true>(q, ldq, n_q, kt + j, ldk, 32, head_dim, scale, s + j, lds);
    } else {
      scores_block<false>(q, ldq, n_q, kt + j, ldk, n_keys - j, head_dim, scale, s + j, lds);
    }
  }
}

// Output for up to 4 query rows x 64 dims per register tile (16 accumulators): broadcast one
// probability, multiply four vectors of a V row. kFull: all 64 dims valid, else masked.
template <int R, bool kFull>
inline void pv_tile(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n_keys,
                    int64_t n_dims, float* o, int64_t ldo) {
  __mmask16 m[4];
  for (int c = 0; c < 4; ++c)
    m[c] = kFull ? 0xffff : n_dims > 16 * c ? tail_mask16(n_dims - 16 * c) : 0;
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < n_keys; ++j) {
    __m512 vv[4];
    for (int c = 0; c < 4; ++c) {
      vv[c] = kFull ? _mm512_loadu_ps(v + j * ldv + 16 * c)
                    : _mm512_maskz_loadu_ps(m[c], v + j * ldv + 16 * c);
    }
    for (int r = 0; r < R; ++r) {
      const __m512 pv = _mm512_set1_ps(p[r * ldp + j]);
      for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_fmadd_ps(pv, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < 4; ++c) {
      if (kFull) {
        _mm512_storeu_ps(o + r * ldo + 16 * c, acc[r][c]);
      } else {
        _mm512_mask_storeu_ps(o + r * ldo + 16 * c, m[c], acc[r][c]);
      }
    }
  }
}

template <bool kFull>
void pv_block(const float* p, int64_t ldp, int64_t n_q, const float* v, int64_t ldv, int64_t n_keys,
              int64_t nd, float* o, int64_t ldo) {
  int64_t i = 0;
  for (; i + 4 <= n_q; i += 4)
    pv_tile<4, kFull>(p + i * ldp, ldp, v, ldv, n_keys, nd, o + i * ldo, ldo);
  for (; i < n_q; ++i) pv_tile<1, kFull>(p + i * ldp, ldp, v, ldv, n_keys, nd, o + i * ldo, ldo);
}

void attn_pv(const float* p, int64_t ldp, int64_t n_q, const float* v, int64_t ldv, int64_t n_keys,
             int64_t head_dim, float* o, int64_t ldo) {
  for (int64_t d = 0; d < head_dim; d += 64) {
    if (head_dim - d >= 64) {
      pv_block<true>(p, ldp, n_q, v + d, ldv, n_keys, 64, o + d, ldo);
    } else {
      pv_block<false>(p, ldp, n_q, v + d, ldv, n_keys, head_dim - d, o + d, ldo);
    }
  }
}

// Decode scores, NC = head_dim / 16 vectors per row: 16 keys at a time, one accumulator per key
// over the row's NC chunks, then one 16x16 transpose and 15 adds give the 16 scores.
// load(j, c): elements [16c, 16c + 16) of key j as f32 (f32 rows, or bf16 rows widened in
// registers: widening is exact, so both give the same bits for the same values).
template <int NC, class Load>
void scores_row_nc(const float* q, int64_t n_keys, float scale, float* s, const Load& load) {
  __m512 qv[NC];
  for (int c = 0; c < NC; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  const __m512 vs = _mm512_set1_ps(scale);
  int64_t j0 = 0;
  for (; j0 + 16 <= n_keys; j0 += 16) {
    __m512 acc[16];
    for (int jj = 0; jj < 16; ++jj) {
      if (j0 + 16 + jj < n_keys) load.prefetch(j0 + 16 + jj, NC);  // the next 16 keys
      __m512 a = _mm512_mul_ps(qv[0], load(j0 + jj, 0));
      for (int c = 1; c < NC; ++c) a = _mm512_fmadd_ps(qv[c], load(j0 + jj, c), a);
      acc[jj] = a;
    }
    simd512::transpose16x16(acc);
    for (int w = 8; w > 0; w /= 2) {
      for (int jj = 0; jj < w; ++jj) acc[jj] = _mm512_add_ps(acc[jj], acc[jj + w]);
    }
    _mm512_storeu_ps(s + j0, _mm512_mul_ps(acc[0], vs));
  }
  for (; j0 < n_keys; ++j0) {
    __m512 a = _mm512_mul_ps(qv[0], load(j0, 0));
    for (int c = 1; c < NC; ++c) a = _mm512_fmadd_ps(qv[c], load(j0, c), a);
    s[j0] = hsum(a) * scale;
  }
}

// Decode P.V: the output row (NC vectors) stays in registers over the keys. load as above; its
// prefetch(j, NC) asks for key j's row kPvPrefetchKeys keys ahead.
constexpr int64_t kPvPrefetchKeys = 8;
template <int NC, class Load>
void pv_row_nc(const float* p, int64_t n_keys, float* out, const Load& load) {
  __m512 o[NC];
  for (int c = 0; c < NC; ++c) o[c] = _mm512_loadu_ps(out + 16 * c);
  for (int64_t j = 0; j < n_keys; ++j) {
    if (j + kPvPrefetchKeys < n_keys) load.prefetch(j + kPvPrefetchKeys, NC);
    const __m512 pj = _mm512_set1_ps(p[j]);
    for (int c = 0; c < NC; ++c) o[c] = _mm512_fmadd_ps(pj, load(j, c), o[c]);
  }
  for (int c = 0; c < NC; ++c) _mm512_storeu_ps(out + 16 * c, o[c]);
}

// Rows of f32 at a stride of ld floats.
struct StridedF32 {
  const float* base;
  int64_t ld;
  __m512 operator()(int64_t j, int c) const { return _mm512_loadu_ps(base + j * ld + 16 * c); }
  void prefetch(int64_t, int) const {}  // a fixed stride: the hardware prefetcher follows it
};
// bf16 rows through a pointer per key, widened in registers.
struct Bf16Rows {
  const uint16_t* const* rows;
  __m512 operator()(int64_t j, int c) const {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[j] + 16 * c));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  // A paged pool keeps one head's rows a whole token apart, too far for the hardware prefetcher.
  void prefetch(int64_t j, int nc) const {
    for (int c = 0; c < nc; c += 2) {
      _mm_prefetch(reinterpret_cast<const char*>(rows[j] + 16 * c), _MM_HINT_T0);
    }
  }
};

void attn_scores_row(const float* q, const float* k, int64_t ld, int64_t n_keys, int64_t head_dim,
                     float scale, float* s) {
  const StridedF32 load{k, ld};
  switch (head_dim) {
    case 64:
      return scores_row_nc<4>(q, n_keys, scale, s, load);
    case 128:
      return scores_row_nc<8>(q, n_keys, scale, s, load);
    default:
      return generic::attn_scores_row(q, k, ld, n_keys, head_dim, scale, s);
  }
}

void attn_pv_row(const float* p, const float* v, int64_t ld, int64_t n_keys, int64_t head_dim,
                 float* o) {
  const StridedF32 load{v, ld};
  switch (head_dim) {
    case 64:
      return pv_row_nc<4>(p, n_keys, o, load);
    case 128:
      return pv_row_nc<8>(p, n_keys, o, load);
    case 256:
      return pv_row_nc<16>(p, n_keys, o, load);
    default:
      return generic::attn_pv_row(p, v, ld, n_keys, head_dim, o);
  }
}

bool attn_scores_row_bf16(const float* q, const uint16_t* const* k, int64_t n_keys,
                          int64_t head_dim, float scale, float* s) {
  if (head_dim != 64 && head_dim != 128) return false;
  if (n_keys <= 0) return true;
  const Bf16Rows load{k};
  switch (head_dim) {
    case 64:
      scores_row_nc<4>(q, n_keys, scale, s, load);
      return true;
    case 128:
      scores_row_nc<8>(q, n_keys, scale, s, load);
      return true;
    default:
      return false;
  }
}

// P.V of R rows sharing their bf16 V rows (a GQA group's query heads). A 32-element load is
// widened without a shuffle: its even elements by a shift, its odd ones by a mask, so each row's
// accumulators keep the even and the odd elements apart (interleaved back at the end). Per key
// and 32 elements: one load and two integer operations for all R rows, two FMAs per row. Each
// element gets the FMAs of pv_row_nc, in key order: the same bits.
//   p [R][ldp], v[j] -> [32 * NC32] bf16, o [R][ldo]
template <int NC32, int R>
void pv_rows_bf16(const float* p, int64_t ldp, const uint16_t* const* v, int64_t n_keys, float* o,
                  int64_t ldo, bool prefetch) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i high16 = _mm512_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
  __m512 ev[R][NC32], od[R][NC32];  // row r, elements 32 c + 2 i (ev) and 32 c + 2 i + 1 (od)
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < NC32; ++c) {
      const __m512 lo = _mm512_loadu_ps(o + r * ldo + 32 * c);
      const __m512 hi = _mm512_loadu_ps(o + r * ldo + 32 * c + 16);
      ev[r][c] = _mm512_permutex2var_ps(lo, even, hi);
      od[r][c] = _mm512_permutex2var_ps(lo, odd, hi);
    }
  }
  for (int64_t j = 0; j < n_keys; ++j) {
    if (prefetch && j + kPvPrefetchKeys < n_keys) {
      for (int c = 0; c < NC32; ++c) {
        _mm_prefetch(reinterpret_cast<const char*>(v[j + kPvPrefetchKeys] + 32 * c), _MM_HINT_T0);
      }
    }
    __m512 pj[R];
    for (int r = 0; r < R; ++r) pj[r] = _mm512_set1_ps(p[r * ldp + j]);
    for (int c = 0; c < NC32; ++c) {
      const __m512i x = _mm512_loadu_si512(v[j] + 32 * c);
      const __m512 e = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
      const __m512 d = _mm512_castsi512_ps(_mm512_and_si512(x, high16));
      for (int r = 0; r < R; ++r) {
        ev[r][c] = _mm512_fmadd_ps(pj[r], e, ev[r][c]);
        od[r][c] = _mm512_fmadd_ps(pj[r], d, od[r][c]);
      }
    }
  }
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < NC32; ++c) {
      _mm512_storeu_ps(o + r * ldo + 32 * c, _mm512_permutex2var_ps(ev[r][c], first, od[r][c]));
      _mm512_storeu_ps(o + r * ldo + 32 * c + 16,
                       _mm512_permutex2var_ps(ev[r][c], second, od[r][c]));
    }
  }
}

// n_rows rows R at a time (then fewer): R rows' accumulators, 2 x NC32 x R registers, stay
// within 16.
template <int NC32, int R>
void pv_rows_bf16_all(const float* p, int64_t ldp, int64_t n_rows, const uint16_t* const* v,
                      int64_t n_keys, float* o, int64_t ldo, bool prefetch) {
  int64_t r = 0;
  for (; r + R <= n_rows; r += R)
    pv_rows_bf16<NC32, R>(p + r * ldp, ldp, v, n_keys, o + r * ldo, ldo, prefetch);
  if constexpr (R > 1) {
    if (r < n_rows) {
      pv_rows_bf16_all<NC32, R / 2>(p + r * ldp, ldp, n_rows - r, v, n_keys, o + r * ldo, ldo,
                                    prefetch);
    }
  }
}

bool attn_pv_rows_bf16(const float* p, int64_t ldp, int64_t n_rows, const uint16_t* const* v,
                       int64_t n_keys, int64_t head_dim, float* o, int64_t ldo, bool prefetch) {
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  if (n_keys <= 0) return true;
  switch (head_dim) {
    case 64:
      pv_rows_bf16_all<2, 4>(p, ldp, n_rows, v, n_keys, o, ldo, prefetch);
      return true;
    case 128:
      pv_rows_bf16_all<4, 2>(p, ldp, n_rows, v, n_keys, o, ldo, prefetch);
      return true;
    case 256:
      pv_rows_bf16_all<8, 1>(p, ldp, n_rows, v, n_keys, o, ldo, prefetch);
      return true;
    default:
      return false;
  }
}

float dot(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return hsum(_mm512_add_ps(acc0, acc1));
}

void axpy(float* y, float a, const float* x, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    _mm512_mask_storeu_ps(
        y + i, m,
        _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// exp on 16 lanes, same algorithm as generic::exp_approx.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(
      _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
      _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
  const __m512i pow2 =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(e, _mm512_castsi512_ps(pow2));
}

float max(const float* v, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    m = _mm512_mask_max_ps(m, tail_mask16(n - i), m,
                           _mm512_maskz_loadu_ps(tail_mask16(n - i), v + i));
  }
  alignas(64) float f[16];
  _mm512_store_ps(f, m);
  float r = f[0];
  for (int l = 1; l < 16; ++l) r = f[l] > r ? f[l] : r;
  return r;
}

float exp_sub_sum(float* v, float mx, int64_t n) {
  const __m512 vm = _mm512_set1_ps(mx);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, v + i), vm));
    _mm512_mask_storeu_ps(v + i, m, e);
    acc = _mm512_mask_add_ps(acc, m, acc, e);
  }
  return hsum(acc);
}

void swiglu_row(const float* gate, const float* up, int64_t n, float* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void rms_norm_row(const float* x, const float* w, int64_t n, float eps, float* out) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(tail_mask16(n - i), x + i);
    acc = _mm512_fmadd_ps(v, v, acc);
  }
  const double ss = hsum(acc);
  const __m512 inv =
      _mm512_set1_ps(static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps)));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), v));
  }
}

// Full vectors unmasked (masked stores are slow on some cores, e.g. AMD Zen 4), the tail masked;
// long runs (paged KV blocks) stream with the GEMV's software prefetch.
void widen(const void* src, DType dtype, int64_t n, float* dst) {
  int64_t i = 0;
  switch (dtype) {
    case DType::kBF16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (; i + 16 <= n; i += 16) {
        prefetch_ahead(h + i);
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i));
        _mm512_storeu_ps(dst + i,
                         _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)));
      }
      break;
    }
    case DType::kF16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (; i + 16 <= n; i += 16) {
        prefetch_ahead(h + i);
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(v));
      }
      break;
    }
    case DType::kF8E4M3: {
      const uint8_t* b = static_cast<const uint8_t*>(src);
      for (; i + 16 <= n; i += 16) {
        prefetch_ahead(b + i);
        _mm512_storeu_ps(
            dst + i, f8e4m3x16_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i))));
      }
      break;
    }
    case DType::kInt8:  // never here: quantized weights take matmul.cpp's own path
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF32: {
      const float* f = static_cast<const float*>(src);
      for (; i + 16 <= n; i += 16) {
        prefetch_ahead(f + i);
        _mm512_storeu_ps(dst + i, _mm512_loadu_ps(f + i));
      }
      break;
    }
  }
  if (i < n) _mm512_mask_storeu_ps(dst + i, tail_mask16(n - i), load16(src, dtype, i, n));
}

// 32 codes at a time in 16-bit lanes, integer operations only: a normal code's bf16 is its
// exponent and mantissa shifted into place and rebiased (+120 << 7), the 7 subnormal codes and
// zero come from an 8-entry table (vpermw), NaN (0x7f) is set apart, the sign or-ed in.
void f8e4m3_to_bf16(const uint8_t* src, int64_t n, uint16_t* dst) {
  alignas(64) static const uint16_t kSub[32] = {0x0000, 0x3b00, 0x3b80, 0x3bc0,
                                                0x3c00, 0x3c20, 0x3c40, 0x3c60};  // m * 2^-9
  const __m512i sub = _mm512_load_si512(kSub);
  const __m512i mag_mask = _mm512_set1_epi16(0x7f), nan_code = _mm512_set1_epi16(0x7f);
  const __m512i bias = _mm512_set1_epi16(120 << 7), sign_bit = _mm512_set1_epi16(-0x8000);
  const __m512i seven = _mm512_set1_epi16(7), qnan = _mm512_set1_epi16(0x7fc0);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i w =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    const __m512i a = _mm512_and_si512(w, mag_mask);
    __m512i b = _mm512_add_epi16(_mm512_slli_epi16(a, 4), bias);
    b = _mm512_mask_permutexvar_epi16(b, _mm512_cmple_epu16_mask(a, seven), a, sub);
    b = _mm512_mask_mov_epi16(b, _mm512_cmpeq_epi16_mask(a, nan_code), qnan);
    b = _mm512_ternarylogic_epi32(b, _mm512_slli_epi16(w, 8), sign_bit, 0xf8);  // b | (s & m)
    _mm512_storeu_si512(dst + i, b);
  }
  if (i < n) generic::f8e4m3_to_bf16(src + i, n - i, dst + i);
}

// 16 floats at a time, the steps of f32_to_f8e4m3 (dtype.cpp) on 32-bit lanes: the mantissa
// rounded to 3 bits (nearest even) and the exponent rebiased; below 2^-6 the value times 2^9
// rounded to the nearest even integer (the subnormal codes 0..8); >= 448 and infinities 0x7e, NaN
// 0x7f; the sign or-ed in, each lane narrowed to its low byte.
void f32_to_f8e4m3(const float* src, int64_t n, uint8_t* dst) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), round = _mm512_set1_epi32(0x7ffff);
  const __m512i one = _mm512_set1_epi32(1), rebias = _mm512_set1_epi32(120 << 3);
  const __m512i sign_bit = _mm512_set1_epi32(0x80), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i max_code = _mm512_set1_epi32(0x7e), nan_code = _mm512_set1_epi32(0x7f);
  const __m512i big = _mm512_set1_epi32(0x43e00000), tiny = _mm512_set1_epi32(0x3c800000);
  const __m512 sub_scale = _mm512_set1_ps(512.0f);
  auto narrow16 = [&](__m512 x) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i abs = _mm512_and_si512(bits, abs_mask);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(abs, 20), one);
    __m512i code = _mm512_sub_epi32(
        _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(abs, round), odd), 20), rebias);
    const __m512i sub = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_castsi512_ps(abs), sub_scale),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    code = _mm512_mask_mov_epi32(code, _mm512_cmplt_epu32_mask(abs, tiny), sub);
    code = _mm512_mask_mov_epi32(code, _mm512_cmpge_epu32_mask(abs, big), max_code);
    code = _mm512_mask_mov_epi32(code, _mm512_cmpgt_epu32_mask(abs, inf), nan_code);
    return _mm512_or_si512(code, _mm512_and_si512(_mm512_srli_epi32(bits, 24), sign_bit));
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm512_cvtepi32_epi8(narrow16(_mm512_loadu_ps(src + i))));
  }
  if (i < n) {
    const __mmask16 m = tail_mask16(n - i);
    _mm512_mask_cvtepi32_storeu_epi8(dst + i, m, narrow16(_mm512_maskz_loadu_ps(m, src + i)));
  }
}

}  // namespace

extern const KernelTable kAvx512Table = {
    .isa = Isa::kAvx512,
    .gemv = gemv,
    .gemm_mr = kMr,
    .gemm_nr = kNr,
    .gemm_pack_w = gemm_pack_w,
    .gemm_tile = gemm_tile,
    .attn_scores = attn_scores,
    .attn_pv = attn_pv,
    .attn_scores_row = attn_scores_row,
    .attn_pv_row = attn_pv_row,
    .attn_scores_row_bf16 = attn_scores_row_bf16,
    .attn_pv_rows_bf16 = attn_pv_rows_bf16,
    .dot = dot,
    .axpy = axpy,
    .scale = generic::scale,
    .add = generic::add,
    .max = max,
    .exp_sub_sum = exp_sub_sum,
    .widen = widen,
    .f8e4m3_to_bf16 = f8e4m3_to_bf16,
    .f32_to_f8e4m3 = f32_to_f8e4m3,
    .rms_norm_row = rms_norm_row,
    .swiglu_row = swiglu_row,
};

}  // namespace shardlm::cpu
