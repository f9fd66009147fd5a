// Block quantization of weight rows (DType::kInt8, layout in dtype.h): quantize a row of floats,
// dequantize it back, and read one block's scale. Scalar and exact: the packer quantizes with it
// and the kernels' reference twins (kernels/ref) dequantize with it. Not the fast kernels
// (kernels/cpu/gemv_int8.h) and not tensor-level logic (the packer decides what to quantize).
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"

namespace shardlm {

// Symmetric int8 with one f16 scale per kQuantBlock inputs: scale = max|x| / 127 over the block
// (rounded to f16), q = round(x / scale) in [-127, 127], stored as the unsigned byte q + 128 (so
// that VPDPBUSD, unsigned x signed, takes weight bytes as they are); a block of zeros has
// scale 0.
//   x [n] (n a multiple of kQuantBlock), out [row_bytes(kInt8, n)]
void quantize_row_int8(const float* x, int64_t n, uint8_t* out);

// out[i] = scale(i / 32) * (byte[i] - 128).   row [row_bytes(kInt8, n)], out [n]
void dequantize_row_int8(const uint8_t* row, int64_t n, float* out);

// The scales of a row start after its n quantized values.
inline const uint16_t* int8_row_scales(const uint8_t* row, int64_t n) {
  return reinterpret_cast<const uint16_t*>(row + n);
}

}  // namespace shardlm
