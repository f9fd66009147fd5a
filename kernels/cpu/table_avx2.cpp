// The AVX2 kernel table (AVX2 + FMA + F16C, i.e. x86-64-v3; compiled with those -m flags and
// selected at run time only when cpuid and the OS allow it). Hand-written: GEMV for
// f32/f16/bf16 rows, the f32 GEMM micro-kernel (6 tokens x 16 outputs) and dot/axpy; the other
// loops are generic_loops.h compiled for AVX2. Row tails (n_in % 8) are summed in scalar code.
// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the _mm512_undefined_*
// placeholders; GCC bug 105593, fixed in GCC 13). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/cpu/generic_loops.h"

namespace shardlm::cpu {

namespace {

constexpr int kMr = 6, kNr = 16;
constexpr int kGemvStreams = 4;  // GEMV rows in flight: 4 sequential streams per thread

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

// 8 widened weights starting at element k of a row (no bounds: k + 8 <= n).
inline __m256 load8(const void* w, DType dtype, int64_t k) {
  switch (dtype) {
    case DType::kBF16: {
      const __m128i h =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + k));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case DType::kF16:
      return _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + k)));
    case DType::kInt8:  // never here: quantized weights take matmul.cpp's own path
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF8E4M3:  // never here: a KV cache type (widen is generic::widen)
    case DType::kF32:
      break;
  }
  return _mm256_loadu_ps(static_cast<const float*>(w) + k);
}

// R rows (stride ld elements) against one activation row.
template <int R>
inline void dot_rows(const float* x, const void* w, DType dtype, int64_t ld, int64_t n,
                     float* out) {
  const size_t esz = generic::elem_size(dtype);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
    for (int r = 0; r < R; ++r) {
      const void* wr = wb + static_cast<size_t>(r * ld) * esz;
      // 1 KiB ahead (see table_avx512.cpp); one line per 16 weights of 2 bytes
      _mm_prefetch(static_cast<const char*>(wr) + k * static_cast<int64_t>(esz) + 1024,
                   _MM_HINT_T0);
      acc[r][0] = _mm256_fmadd_ps(load8(wr, dtype, k), x0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(load8(wr, dtype, k + 8), x1, acc[r][1]);
    }
  }
  for (; k + 8 <= n; k += 8) {
    const __m256 x0 = _mm256_loadu_ps(x + k);
    for (int r = 0; r < R; ++r) {
      acc[r][0] =
          _mm256_fmadd_ps(load8(wb + static_cast<size_t>(r * ld) * esz, dtype, k), x0, acc[r][0]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const void* wr = wb + static_cast<size_t>(r * ld) * esz;
    float tail = 0.0f;
    for (int64_t i = k; i < n; ++i) tail += x[i] * generic::load_w(wr, dtype, i);
    out[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1])) + tail;
  }
}

// The rows are cut into kGemvStreams equal streams; block i takes row i of every stream, so the
// CPU sees that many independent sequential streams (more memory requests in flight).
void gemv(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
          int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t esz = generic::elem_size(dtype);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  float out[kGemvStreams];
  const int64_t q = (o_end - o_begin) / kGemvStreams;
  for (int64_t i = 0; i < q; ++i) {
    const int64_t o = o_begin + i;
    const void* wr = wb + static_cast<size_t>(o * n_in) * esz;
    for (int64_t t = 0; t < n_tokens; ++t) {
      dot_rows<kGemvStreams>(x + t * n_in, wr, dtype, q * n_in, n_in, out);
      for (int64_t r = 0; r < kGemvStreams; ++r) {
        y[t * ldy + o + r * q] = out[r] + (bias ? bias[o + r * q] : 0.0f);
      }
    }
  }
  for (int64_t o = o_begin + kGemvStreams * q; o < o_end; ++o) {
    const void* wr = wb + static_cast<size_t>(o * n_in) * esz;
    for (int64_t t = 0; t < n_tokens; ++t) {
      dot_rows<1>(x + t * n_in, wr, dtype, n_in, n_in, out);
      y[t * ldy + o] = out[0] + (bias ? bias[o] : 0.0f);
    }
  }
}

void gemm_tile(const float* xp, const float* wp, int64_t kc, float* c, int64_t ldc, int m_valid,
               int n_valid, bool accumulate, const float* bias) {
  __m256 acc[kMr][2];
  for (int m = 0; m < kMr; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 w0 = _mm256_loadu_ps(wp + k * kNr), w1 = _mm256_loadu_ps(wp + k * kNr + 8);
    const float* xk = xp + k * kMr;
    for (int m = 0; m < kMr; ++m) {
      const __m256 xv = _mm256_broadcast_ss(xk + m);
      acc[m][0] = _mm256_fmadd_ps(xv, w0, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(xv, w1, acc[m][1]);
    }
  }
  for (int m = 0; m < m_valid; ++m) {
    alignas(32) float a[kNr];
    _mm256_store_ps(a, acc[m][0]);
    _mm256_store_ps(a + 8, acc[m][1]);
    float* cr = c + m * ldc;
    for (int n = 0; n < n_valid; ++n) {
      const float base = accumulate ? cr[n] : (bias ? bias[n] : 0.0f);
      cr[n] = base + a[n];
    }
  }
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return hsum(_mm256_add_ps(acc0, acc1)) + tail;
}

void axpy(float* y, float a, const float* x, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

extern const KernelTable kAvx2Table = {
    .isa = Isa::kAvx2,
    .gemv = gemv,
    .gemm_mr = kMr,
    .gemm_nr = kNr,
    .gemm_pack_w = generic::gemm_pack_w<kNr>,
    .gemm_tile = gemm_tile,
    .attn_scores = generic::attn_scores,
    .attn_pv = generic::attn_pv,
    .attn_scores_row = generic::attn_scores_row,
    .attn_pv_row = generic::attn_pv_row,
    .dot = dot,
    .axpy = axpy,
    .scale = generic::scale,
    .add = generic::add,
    .max = generic::max,
    .exp_sub_sum = generic::exp_sub_sum,
    .widen = generic::widen,
    .f8e4m3_to_bf16 = generic::f8e4m3_to_bf16,
    .f32_to_f8e4m3 = generic::f32_to_f8e4m3,
    .rms_norm_row = generic::rms_norm_row,
    .swiglu_row = generic::swiglu_row,
};

}  // namespace shardlm::cpu
