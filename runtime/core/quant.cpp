// Scalar int8 and int4 block quantization (see quant.h).
#include "runtime/core/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace shardlm {

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
      const float v = std::nearbyint(xb[i] * inv);
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

namespace {

// The byte of an int4 row holding input i, and the shift of its nibble (dtype.h's layout).
inline void int4_position(int64_t n, int64_t i, int64_t* byte, int* shift) {
  const int64_t pair = i / 64, j = i % 64;
  // A final lone block (n not a multiple of 64) pairs its own halves: 16 bytes.
  const int64_t half = (pair * 64 + 64 <= n) ? 32 : 16;
  *byte = pair * 32 + j % half;
  *shift = j < half ? 0 : 4;
}

}  // namespace

void quantize_row_int4(const float* x, int64_t n, uint8_t* out) {
  uint8_t* scales = out + n / 2;  // f16
  std::memset(out, 0, static_cast<size_t>(n / 2));
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float m = 0;  // the value of largest magnitude, with its sign
    for (int64_t i = 0; i < kQuantBlock; ++i)
      if (std::fabs(xb[i]) > std::fabs(m)) m = xb[i];
    const uint16_t h = f32_to_f16(m / -8.0f);
    const float d = f16_to_f32(h);
    const float inv = d != 0 ? 1.0f / d : 0.0f;
    for (int64_t i = 0; i < kQuantBlock; ++i) {
      const float v = std::clamp(std::nearbyint(xb[i] * inv), -8.0f, 7.0f);
      int64_t byte;
      int shift;
      int4_position(n, b * kQuantBlock + i, &byte, &shift);
      out[byte] |= static_cast<uint8_t>((static_cast<int>(v) + 8) << shift);
    }
    std::memcpy(scales + b * 2, &h, 2);
  }
}

void unpack_block_int4(const uint8_t* row, int64_t n, int64_t b, uint8_t* out) {
  for (int64_t i = 0; i < kQuantBlock; ++i) {
    int64_t byte;
    int shift;
    int4_position(n, b * kQuantBlock + i, &byte, &shift);
    out[i] = (row[byte] >> shift) & 0x0F;
  }
}

void dequantize_row_int4(const uint8_t* row, int64_t n, float* out) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    uint16_t h;
    std::memcpy(&h, row + n / 2 + b * 2, 2);
    const float d = f16_to_f32(h);
    uint8_t q[kQuantBlock];
    unpack_block_int4(row, n, b, q);
    for (int64_t i = 0; i < kQuantBlock; ++i)
      out[b * kQuantBlock + i] = d * static_cast<float>(q[i] - 8);
  }
}

void quantize_row(DType t, const float* x, int64_t n, uint8_t* out) {
  if (t == DType::kInt4) {
    quantize_row_int4(x, n, out);
  } else {
    quantize_row_int8(x, n, out);
  }
}

void dequantize_row(DType t, const uint8_t* row, int64_t n, float* out) {
  if (t == DType::kInt4) {
    dequantize_row_int4(row, n, out);
  } else {
    dequantize_row_int8(row, n, out);
  }
}

}  // namespace shardlm
