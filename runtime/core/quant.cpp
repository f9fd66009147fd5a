// Scalar int8 block quantization (see quant.h).
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

}  // namespace shardlm
