// Portable C++ versions of the KernelTable loops, written so compilers vectorize them (fixed
// 16-lane accumulators, no calls in inner loops). Every function is `static`: each ISA
// translation unit that includes this header gets its own copy compiled with its own flags,
// so no out-of-line copy built for a wider ISA can be picked by the linker for another TU.
// table_scalar.cpp uses all of them; the SIMD tables use the ones they do not hand-write.
// Internal to kernels/cpu.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/kernel_table.h"

namespace shardlm::cpu::generic {

static inline float bits_to_f32(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

static inline uint32_t f32_to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

static inline float bf16_bits_to_f32(uint16_t h) {
  return bits_to_f32(static_cast<uint32_t>(h) << 16);
}

// Exact f16 -> f32 (normals, subnormals, inf, NaN) without data-dependent branches.
static inline float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  const uint32_t inf_nan = 0x7f800000u | ((em & 0x3ffu) << 13);
  const uint32_t finite = f32_to_bits(bits_to_f32(em << 13) * 0x1p112f);
  return bits_to_f32((em >= 0x7c00u ? inf_nan : finite) | sign);
}

// Exact f8e4m3 -> f32 (dtype.h): its exponent and mantissa in bits 7-13 of an f16 make 2^-8 of
// its value (normals and subnormals alike); 0x7f / 0xff are NaN.
static inline float f8e4m3_bits_to_f32(uint8_t b) {
  if ((b & 0x7fu) == 0x7fu)
    return bits_to_f32(0x7fc00000u | (static_cast<uint32_t>(b & 0x80u) << 24));
  const uint16_t h = static_cast<uint16_t>(((b & 0x80u) << 8) | ((b & 0x7fu) << 7));
  return f16_bits_to_f32(h) * 256.0f;
}

static inline float load_w(const void* w, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kBF16:
      return bf16_bits_to_f32(static_cast<const uint16_t*>(w)[i]);
    case DType::kF16:
      return f16_bits_to_f32(static_cast<const uint16_t*>(w)[i]);
    case DType::kF8E4M3:  // KV rows
      return f8e4m3_bits_to_f32(static_cast<const uint8_t*>(w)[i]);
    case DType::kInt8:  // never here: quantized weights take matmul.cpp's own path
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF32:
      break;
  }
  return static_cast<const float*>(w)[i];
}

// Bytes per element of the float types (f32, f16, bf16, f8e4m3).
static inline size_t elem_size(DType dtype) {
  return dtype == DType::kF32 ? 4 : dtype == DType::kF8E4M3 ? 1 : 2;
}

// exp(x) for x in [-87, 88] (clamped outside), within 2 ulp: x = n ln2 + r, |r| <= ln2 / 2,
// degree-6 polynomial for exp(r), then scaled by 2^n through the exponent bits.
static inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  return e * bits_to_f32(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
}

static inline float dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) acc[l] += a[i + l] * b[i + l];
  }
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
  for (int w = 8; w > 0; w /= 2) {
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  }
  return acc[0];
}

// Dot of f32 activations with one weight row of `dtype`, widening 16 weights at a time.
static inline float dot_w(const float* a, const void* w, DType dtype, int64_t n) {
  if (dtype == DType::kF32) return dot(a, static_cast<const float*>(w), n);
  const uint16_t* h = static_cast<const uint16_t*>(w);
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float wf[16];
    if (dtype == DType::kBF16) {
      for (int l = 0; l < 16; ++l) wf[l] = bf16_bits_to_f32(h[i + l]);
    } else {
      for (int l = 0; l < 16; ++l) wf[l] = f16_bits_to_f32(h[i + l]);
    }
    for (int l = 0; l < 16; ++l) acc[l] += a[i + l] * wf[l];
  }
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * load_w(w, dtype, i);
  for (int s = 8; s > 0; s /= 2) {
    for (int l = 0; l < s; ++l) acc[l] += acc[l + s];
  }
  return acc[0];
}

static inline void gemv(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
                        int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t row_bytes = static_cast<size_t>(n_in) * elem_size(dtype);
  for (int64_t o = o_begin; o < o_end; ++o) {
    const void* wr = static_cast<const uint8_t*>(w) + static_cast<size_t>(o) * row_bytes;
    const float b = bias ? bias[o] : 0.0f;
    for (int64_t t = 0; t < n_tokens; ++t)
      y[t * ldy + o] = dot_w(x + t * n_in, wr, dtype, n_in) + b;
  }
}

static inline void widen(const void* src, DType dtype, int64_t n, float* dst) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  if (dtype == DType::kF8E4M3) {
    const uint8_t* b = static_cast<const uint8_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = f8e4m3_bits_to_f32(b[i]);
    return;
  }
  const uint16_t* h = static_cast<const uint16_t*>(src);
  if (dtype == DType::kBF16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_bits_to_f32(h[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_bits_to_f32(h[i]);
  }
}

static inline void f8e4m3_to_bf16(const uint8_t* src, int64_t n, uint16_t* dst) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = static_cast<uint16_t>(f32_to_bits(f8e4m3_bits_to_f32(src[i])) >> 16);
}

static inline void f32_to_f8e4m3(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = shardlm::f32_to_f8e4m3(src[i]);
}

template <int NR>
static inline void gemm_pack_w(const void* w, DType dtype, int64_t n_in, int64_t o, int64_t n_rows,
                               int64_t k0, int64_t kc, float* wp) {
  const size_t row_bytes = static_cast<size_t>(n_in) * elem_size(dtype);
  const size_t k_off = static_cast<size_t>(k0) * elem_size(dtype);
  float row[kGemmKc];
  for (int64_t j = 0; j < NR; ++j) {
    if (j < n_rows) {
      widen(static_cast<const uint8_t*>(w) + static_cast<size_t>(o + j) * row_bytes + k_off, dtype,
            kc, row);
      for (int64_t k = 0; k < kc; ++k) wp[k * NR + j] = row[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) wp[k * NR + j] = 0.0f;
    }
  }
}

template <int MR, int NR>
static inline void gemm_tile(const float* xp, const float* wp, int64_t kc, float* c, int64_t ldc,
                             int m_valid, int n_valid, bool accumulate, const float* bias) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int m = 0; m < MR; ++m) {
      const float xv = xp[k * MR + m];
      for (int n = 0; n < NR; ++n) acc[m][n] += xv * wp[k * NR + n];
    }
  }
  for (int m = 0; m < m_valid; ++m) {
    float* cr = c + m * ldc;
    for (int n = 0; n < n_valid; ++n) {
      const float base = accumulate ? cr[n] : (bias ? bias[n] : 0.0f);
      cr[n] = base + acc[m][n];
    }
  }
}

static inline void attn_scores(const float* q, int64_t ldq, int64_t n_q, const float* kt,
                               int64_t ldk, int64_t n_keys, int64_t head_dim, float scale, float* s,
                               int64_t lds) {
  for (int64_t i = 0; i < n_q; ++i) {
    float* si = s + i * lds;
    for (int64_t j = 0; j < n_keys; ++j) si[j] = 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) {
      const float qv = q[i * ldq + d];
      const float* kd = kt + d * ldk;
      for (int64_t j = 0; j < n_keys; ++j) si[j] += qv * kd[j];
    }
    for (int64_t j = 0; j < n_keys; ++j) si[j] *= scale;
  }
}

static inline void attn_pv(const float* p, int64_t ldp, int64_t n_q, const float* v, int64_t ldv,
                           int64_t n_keys, int64_t head_dim, float* o, int64_t ldo) {
  for (int64_t i = 0; i < n_q; ++i) {
    float* oi = o + i * ldo;
    for (int64_t d = 0; d < head_dim; ++d) oi[d] = 0.0f;
    for (int64_t j = 0; j < n_keys; ++j) {
      const float pv = p[i * ldp + j];
      const float* vj = v + j * ldv;
      for (int64_t d = 0; d < head_dim; ++d) oi[d] += pv * vj[d];
    }
  }
}

static inline float dot(const float* a, const float* b, int64_t n);

static inline void attn_scores_row(const float* q, const float* k, int64_t ld, int64_t n_keys,
                                   int64_t head_dim, float scale, float* s) {
  for (int64_t j = 0; j < n_keys; ++j) s[j] = dot(q, k + j * ld, head_dim) * scale;
}

static inline void attn_pv_row(const float* p, const float* v, int64_t ld, int64_t n_keys,
                               int64_t head_dim, float* o) {
  for (int64_t j = 0; j < n_keys; ++j) {
    const float pj = p[j];
    const float* vj = v + j * ld;
    for (int64_t d = 0; d < head_dim; ++d) o[d] += pj * vj[d];
  }
}

static inline void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

static inline void scale(float* y, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

static inline void add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

static inline float max(const float* v, int64_t n) {
  float m = v[0];
  for (int64_t i = 1; i < n; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

static inline float exp_sub_sum(float* v, float m, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) {
      v[i + l] = exp_approx(v[i + l] - m);
      acc[l] += v[i + l];
    }
  }
  for (int l = 0; i < n; ++i, ++l) {
    v[i] = exp_approx(v[i] - m);
    acc[l] += v[i];
  }
  float s = 0;
  for (float a : acc) s += a;
  return s;
}

static inline void rms_norm_row(const float* x, const float* w, int64_t n, float eps, float* out) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) acc[l] += x[i + l] * x[i + l];
  }
  for (int l = 0; i < n; ++i, ++l) acc[l] += x[i] * x[i];
  double ss = 0;
  for (float a : acc) ss += a;
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t j = 0; j < n; ++j) out[j] = w[j] * (x[j] * inv);
}

static inline void swiglu_row(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + exp_approx(-g)) * up[i];
  }
}

}  // namespace shardlm::cpu::generic
