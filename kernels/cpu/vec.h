// Inline building blocks shared by the CPU kernels: fast f16/bf16 -> f32 widening of a run of
// weights and an f32 dot product with a fixed 16-lane accumulation order (so GEMV and GEMM give
// bit-identical results for the same row). Internal to kernels/cpu; not a public API.
#pragma once

#include <cstdint>
#include <cstring>

#include "runtime/core/dtype.h"

namespace shardlm::cpu::vec {

inline constexpr int kLanes = 16;

inline float bits_to_f32(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// Exact f16 -> f32 (normals, subnormals, inf, NaN) without branches the vectorizer dislikes.
inline float f16_to_f32_fast(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  uint32_t mag_bits;
  if (em >= 0x7c00u) {
    mag_bits = 0x7f800000u | ((em & 0x3ffu) << 13);
  } else {
    float f = bits_to_f32(em << 13) * 0x1p112f;
    std::memcpy(&mag_bits, &f, sizeof mag_bits);
  }
  return bits_to_f32(mag_bits | sign);
}

// dst[i] = widen(src[i]) for i < n.   src [n] (dtype), dst [n]
inline void widen(const void* src, DType dtype, int64_t n, float* dst) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bits_to_f32(static_cast<uint32_t>(s[i]) << 16);
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32_fast(s[i]);
      return;
    }
  }
}

// Sum of a[i] * b[i], accumulated in kLanes f32 lanes then reduced in a fixed order.
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  }
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  }
  return acc[0];
}

// Same accumulation order as dot(a, widen(w)), widening bf16 weights on the fly.
inline float dot_bf16(const float* a, const uint16_t* w, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    float wf[kLanes];
    for (int l = 0; l < kLanes; ++l) wf[l] = bits_to_f32(static_cast<uint32_t>(w[i + l]) << 16);
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * wf[l];
  }
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * bits_to_f32(static_cast<uint32_t>(w[i]) << 16);
  for (int w2 = kLanes / 2; w2 > 0; w2 /= 2) {
    for (int l = 0; l < w2; ++l) acc[l] += acc[l + w2];
  }
  return acc[0];
}

}  // namespace shardlm::cpu::vec
