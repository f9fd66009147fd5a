// One block of a quantized row as 32 signed bytes, with AVX2 intrinsics: shared by the AVX2 and
// AVX-512 quantized kernels (gemv_quantized_avx2.cpp, gemv_quantized_avx512.cpp), each of which
// compiles it with its own flags (AVX2 at least). Internal to kernels/cpu; not a kernel.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "runtime/core/dtype.h"

namespace shardlm::cpu {

// Block b of a row as 32 signed bytes q. int8: the stored bytes q + 128 (dtype.h: 4 in each of
// its group's 8 steps) xor 0x80. int4: the block's nibbles (4 bytes in each of its group's 4
// steps) minus 8.   row [row_bytes(dtype, n_in)]
// static: each file's copy is compiled with that file's flags and must stay its own (an inline
// function with external linkage could be merged with the AVX-512 file's copy at link time).
static inline __m256i load_block_q(DType dtype, const uint8_t* row, int64_t n_in, int64_t b) {
  const int64_t G = quant_group_blocks(n_in, b / kQuantGroupBlocks);
  if (dtype == DType::kInt8) {
    // The block's 4 bytes of each of its group's 8 steps (dtype.h), inputs 4s .. 4s + 3.
    const uint8_t* p = row + int8_byte(n_in, b * kQuantBlock);
    int32_t s[8];
    for (int k = 0; k < 8; ++k) std::memcpy(&s[k], p + 4 * G * k, 4);
    return _mm256_xor_si256(_mm256_setr_epi32(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                            _mm256_set1_epi8(-128));
  }
  // The block's 4 bytes of each of its group's 4 steps (dtype.h): low nibbles inputs 8s .. 8s + 3,
  // high nibbles 8s + 4 .. 8s + 7.
  const uint8_t* p = row + int4_position(n_in, b * kQuantBlock).byte;
  int32_t s[4];
  for (int k = 0; k < 4; ++k) std::memcpy(&s[k], p + 4 * G * k, 4);
  const __m128i v = _mm_setr_epi32(s[0], s[1], s[2], s[3]);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(v, low4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
  const __m256i q = _mm256_setr_m128i(_mm_unpacklo_epi32(lo, hi), _mm_unpackhi_epi32(lo, hi));
  return _mm256_sub_epi8(q, _mm256_set1_epi8(8));
}

}  // namespace shardlm::cpu
