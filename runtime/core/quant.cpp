// Scalar int8 and int4 block quantization (see quant.h).
#include "runtime/core/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace shardlm {

namespace {

// Round to nearest even for |v| < 2^22 in the default rounding mode, as std::nearbyint does, but
// inline on every x86-64 (nearbyint is a library call below SSE4.1): adding and subtracting
// 1.5 * 2^23 leaves v's integer part in the mantissa.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// Places block b's stored values q + 8 (one per byte, [kQuantBlock]) into an int4 row of n
// inputs, in dtype.h's layout (each byte belongs to one block, so the block writes whole bytes).
inline void put_block_int4(const uint8_t* q, int64_t n, int64_t b, uint8_t* out) {
  const Int4Position at = int4_position(n, b * kQuantBlock);  // the block's first byte
  const int64_t G = quant_group_blocks(n, b / kQuantGroupBlocks);
  for (int s = 0; s < 4; ++s)
    for (int i = 0; i < 4; ++i)
      out[at.byte + 4 * G * s + i] = static_cast<uint8_t>(q[8 * s + i] | (q[8 * s + 4 + i] << 4));
}

// Moves an int8 row's bytes from input order (src) into dtype.h's interleaved order (dst); the
// scales are not touched.   src [n], dst [n]
inline void interleave_int8(const uint8_t* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    uint8_t* p = dst + int8_byte(n, b * kQuantBlock);
    const int64_t G = quant_group_blocks(n, b / kQuantGroupBlocks);
    for (int s = 0; s < 8; ++s) std::memcpy(p + 4 * G * s, src + b * kQuantBlock + 4 * s, 4);
  }
}

// kInt4 / kInt4G128 rows (t): per scale group of sb blocks, the value of largest magnitude m (with
// its sign) sets scale = m / -8 (rounded to f16), and every input of the group is rounded against
// it and clamped to [-8, 7].   x [n], out [row_bytes(t, n)]
void quantize_int4(DType t, const float* x, int64_t n, uint8_t* out) {
  const int64_t sb = quant_scale_blocks(t), gi = quant_scale_inputs(t);
  uint8_t* scales = out + n / 2;  // f16
  for (int64_t s = 0; s < n / gi; ++s) {
    const float* xs = x + s * gi;
    float m = 0;  // the value of largest magnitude, with its sign
    for (int64_t i = 0; i < gi; ++i)
      if (std::fabs(xs[i]) > std::fabs(m)) m = xs[i];
    const uint16_t h = f32_to_f16(m / -8.0f);
    const float d = f16_to_f32(h);
    const float inv = d != 0 ? 1.0f / d : 0.0f;
    for (int64_t b = s * sb; b < (s + 1) * sb; ++b) {
      const float* xb = x + b * kQuantBlock;
      uint8_t q[kQuantBlock];  // q + 8
      for (int64_t i = 0; i < kQuantBlock; ++i)
        q[i] = static_cast<uint8_t>(
            static_cast<int>(std::clamp(round_even(xb[i] * inv), -8.0f, 7.0f)) + 8);
      put_block_int4(q, n, b, out);
    }
    std::memcpy(scales + s * 2, &h, 2);
  }
}

// out[i] = scale(i / gi) * (nibble(i) - 8) for a kInt4 / kInt4G128 row (t).
void dequantize_int4(DType t, const uint8_t* row, int64_t n, float* out) {
  const int64_t sb = quant_scale_blocks(t);
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    uint16_t h;
    std::memcpy(&h, row + n / 2 + (b / sb) * 2, 2);
    const float d = f16_to_f32(h);
    uint8_t q[kQuantBlock];
    unpack_block_int4(row, n, b, q);
    for (int64_t i = 0; i < kQuantBlock; ++i)
      out[b * kQuantBlock + i] = d * static_cast<float>(q[i] - 8);
  }
}

}  // namespace

void quantize_row_int8(const float* x, int64_t n, uint8_t* out) {
  uint8_t* q = out;           // q + 128
  uint8_t* scales = out + n;  // f16
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0;
    for (int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
    // The stored (f16) scale is the one the values are rounded against.
    const uint16_t h = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(h);
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    for (int64_t i = 0; i < kQuantBlock; ++i) {
      const float v = round_even(xb[i] * inv);
      q[b * kQuantBlock + i] =
          static_cast<uint8_t>(static_cast<int>(std::clamp(v, -127.0f, 127.0f)) + 128);
    }
    std::memcpy(scales + b * 2, &h, 2);
  }
}

void dequantize_row_int8(const uint8_t* row, int64_t n, float* out) {
  const uint8_t* q = row;  // q + 128
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    uint16_t h;
    std::memcpy(&h, row + n + b * 2, 2);
    const float d = f16_to_f32(h);
    for (int64_t i = 0; i < kQuantBlock; ++i)
      out[b * kQuantBlock + i] = d * static_cast<float>(q[b * kQuantBlock + i] - 128);
  }
}

void quantize_row_int4(const float* x, int64_t n, uint8_t* out) {
  quantize_row(DType::kInt4, x, n, out);
}

void encode_row(DType t, const uint8_t* stored, const uint16_t* scales, int64_t n, uint8_t* out) {
  if (is_int4(t)) {
    for (int64_t b = 0; b < n / kQuantBlock; ++b) {
      uint8_t q[kQuantBlock];
      for (int i = 0; i < kQuantBlock; ++i) q[i] = stored[b * kQuantBlock + i] & 0x0F;
      put_block_int4(q, n, b, out);
    }
  } else {
    interleave_int8(stored, n, out);
  }
  std::memcpy(out + quant_scales_offset(t, n), scales,
              static_cast<size_t>(n / quant_scale_inputs(t)) * 2);
}

void unpack_block_int8(const uint8_t* row, int64_t n, int64_t b, uint8_t* out) {
  const uint8_t* p = row + int8_byte(n, b * kQuantBlock);
  const int64_t G = quant_group_blocks(n, b / kQuantGroupBlocks);
  for (int s = 0; s < 8; ++s) std::memcpy(out + 4 * s, p + 4 * G * s, 4);
}

void unpack_block_int4(const uint8_t* row, int64_t n, int64_t b, uint8_t* out) {
  const uint8_t* p = row + int4_position(n, b * kQuantBlock).byte;
  const int64_t G = quant_group_blocks(n, b / kQuantGroupBlocks);
  for (int s = 0; s < 4; ++s)
    for (int i = 0; i < 4; ++i) {
      out[8 * s + i] = p[4 * G * s + i] & 0x0F;
      out[8 * s + 4 + i] = p[4 * G * s + i] >> 4;
    }
}

void dequantize_row_int4(const uint8_t* row, int64_t n, float* out) {
  dequantize_int4(DType::kInt4, row, n, out);
}

void quantize_row(DType t, const float* x, int64_t n, uint8_t* out) {
  if (is_int4(t)) {
    quantize_int4(t, x, n, out);
  } else {
    // Quantized in input order into out, then its bytes interleaved a group (<= 512 bytes) at a
    // time through a copy.
    quantize_row_int8(x, n, out);
    constexpr int64_t kGroup = kQuantBlock * kQuantGroupBlocks;
    uint8_t plain[kGroup];
    for (int64_t g0 = 0; g0 < n; g0 += kGroup) {
      const int64_t len = std::min(kGroup, n - g0);
      std::memcpy(plain, out + g0, static_cast<size_t>(len));
      // A group's bytes stay within the group: interleave it as a row of its own.
      interleave_int8(plain, len, out + g0);
    }
  }
}

void dequantize_row(DType t, const uint8_t* row, int64_t n, float* out) {
  if (is_int4(t)) {
    dequantize_int4(t, row, n, out);
  } else {
    for (int64_t b = 0; b < n / kQuantBlock; ++b) {
      uint16_t h;
      std::memcpy(&h, row + n + b * 2, 2);
      const float d = f16_to_f32(h);
      uint8_t q[kQuantBlock];  // q + 128
      unpack_block_int8(row, n, b, q);
      for (int64_t i = 0; i < kQuantBlock; ++i)
        out[b * kQuantBlock + i] = d * static_cast<float>(q[i] - 128);
    }
  }
}

}  // namespace shardlm
