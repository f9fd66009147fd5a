// AVX-512 helpers shared by the translation units compiled with AVX-512 flags (table_avx512.cpp,
// gemm_amx.cpp). Everything is `static inline`, so each TU keeps its own copy. Never include
// this from a file compiled for a lower ISA. Internal to kernels/cpu.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace shardlm::cpu::simd512 {

// The first min(n, 16) lanes (n >= 1).
static inline __mmask16 tail_mask16(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}
static inline __mmask32 tail_mask32(int64_t n) {
  return n >= 32 ? static_cast<__mmask32>(0xffffffffu) : static_cast<__mmask32>((1u << n) - 1);
}

// Horizontal sum without _mm512_reduce_add_ps (GCC 12 flags its helpers -Wuninitialized).
static inline float hsum(__m512 v) {
  const __m512 s1 = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 s2 = _mm512_add_ps(s1, _mm512_shuffle_f32x4(s1, s1, _MM_SHUFFLE(2, 3, 0, 1)));
  const __m128 q = _mm512_castps512_ps128(s2);
  const __m128 h = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

// In-register transpose of a 16x16 matrix of 32-bit lanes: r[i] lane j <- r[j] lane i.
static inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int j = 0; j < 16; j += 2) {
    t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
    t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
  }
  for (int j = 0; j < 16; j += 4) {
    r[j] = _mm512_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[j + 1] = _mm512_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[j + 2] = _mm512_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[j + 3] = _mm512_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(r[j], r[j + 4], _MM_SHUFFLE(2, 0, 2, 0));
    t[j + 4] = _mm512_shuffle_f32x4(r[j + 8], r[j + 12], _MM_SHUFFLE(2, 0, 2, 0));
    t[j + 8] = _mm512_shuffle_f32x4(r[j], r[j + 4], _MM_SHUFFLE(3, 1, 3, 1));
    t[j + 12] = _mm512_shuffle_f32x4(r[j + 8], r[j + 12], _MM_SHUFFLE(3, 1, 3, 1));
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 4], _MM_SHUFFLE(2, 0, 2, 0));
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 4], _MM_SHUFFLE(3, 1, 3, 1));
    r[j + 4] = _mm512_shuffle_f32x4(t[j + 8], t[j + 12], _MM_SHUFFLE(2, 0, 2, 0));
    r[j + 12] = _mm512_shuffle_f32x4(t[j + 8], t[j + 12], _MM_SHUFFLE(3, 1, 3, 1));
  }
}

}  // namespace shardlm::cpu::simd512
