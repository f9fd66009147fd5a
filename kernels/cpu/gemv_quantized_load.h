// One block of a quantized row as 32 signed bytes, with AVX2 intrinsics: shared by the AVX2 and
// AVX-512 quantized kernels (gemv_quantized_avx2.cpp, gemv_quantized_avx512.cpp), each of which
// compiles it with its own flags (AVX2 at least). Internal to kernels/cpu; not a kernel.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "runtime/core/dtype.h"

namespace shardlm::cpu {

// Block b of a row as 32 signed bytes q. int8: the stored bytes q + 128 xor 0x80. int4: the
// block's nibbles (dtype.h: the low or high half of its pair's 32 bytes, or both halves of a lone
// final block's 16) minus 8.   row [row_bytes(dtype, n_in)]
// static: each file's copy is compiled with that file's flags and must stay its own (an inline
// function with external linkage could be merged with the AVX-512 file's copy at link time).
static inline __m256i load_block_q(DType dtype, const uint8_t* row, int64_t n_in, int64_t b) {
  if (dtype == DType::kInt8) {
    return _mm256_xor_si256(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * kQuantBlock)),
        _mm256_set1_epi8(-128));
  }
  const __m256i low4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
  const uint8_t* pair = row + (b / 2) * 32;
  if ((b / 2) * 64 + 64 <= n_in) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pair));
    const __m256i nib = (b % 2 == 0) ? v : _mm256_srli_epi16(v, 4);
    return _mm256_sub_epi8(_mm256_and_si256(nib, low4), eight);
  }
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pair));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
  return _mm256_sub_epi8(_mm256_and_si256(both, low4), eight);
}

}  // namespace shardlm::cpu
