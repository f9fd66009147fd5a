// Block quantization of weight rows (DType::kInt8, kInt4 and kInt4G128, layouts in dtype.h):
// quantize a row of floats, dequantize it back, and read a row's scales. Scalar and exact: the
// packer quantizes with it and the kernels' reference twins (kernels/ref) dequantize with it. Not
// the fast kernels (kernels/cpu/gemv_quantized.h) and not tensor-level logic (the packer decides
// what to quantize).
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"

namespace shardlm {

// Symmetric int8 with one f16 scale per kQuantBlock inputs: scale = max|x| / 127 over the block
// (rounded to f16), q = round(x / scale) in [-127, 127], stored as the unsigned byte q + 128 (so
// that VPDPBUSD, unsigned x signed, takes weight bytes as they are); a block of zeros has
// scale 0. The bytes stay in input order: the CPU kernels' quantized activations. A kInt8 weight
// row is the same values interleaved (dtype.h): quantize_row(kInt8, ...).
//   x [n] (n a multiple of kQuantBlock), out [row_bytes(kInt8, n)]
void quantize_row_int8(const float* x, int64_t n, uint8_t* out);

// The inverse for rows in input order (quantize_row_int8's): out[i] = scale(i / 32) *
// (byte[i] - 128).   row [row_bytes(kInt8, n)], out [n]
void dequantize_row_int8(const uint8_t* row, int64_t n, float* out);

// The stored bytes q + 128 of block b (inputs 32b .. 32b + 31) of a kInt8 weight row (interleaved,
// dtype.h), in input order.   row [row_bytes(kInt8, n)], out [kQuantBlock]
void unpack_block_int8(const uint8_t* row, int64_t n, int64_t b, uint8_t* out);

// Symmetric int4 with one f16 scale per kQuantBlock inputs: the block's value of largest magnitude
// m sets scale = m / -8 (rounded to f16; so m itself is q = -8 and all 16 levels are used),
// q = round(x / scale) clamped to [-8, 7], stored as q + 8 in the interleaved nibble layout of
// dtype.h; a block of zeros has scale 0.
//   x [n] (n a multiple of kQuantBlock), out [row_bytes(kInt4, n)]
void quantize_row_int4(const float* x, int64_t n, uint8_t* out);

// out[i] = scale(i / 32) * (nibble(i) - 8).   row [row_bytes(kInt4, n)], out [n]
void dequantize_row_int4(const uint8_t* row, int64_t n, float* out);

// The stored values q + 8 of block b (inputs 32b .. 32b + 31) of an int4 row, unpacked one per
// byte.   row [row_bytes(kInt4, n)], out [kQuantBlock]
void unpack_block_int4(const uint8_t* row, int64_t n, int64_t b, uint8_t* out);

// Writes a row of a quantized type from values quantized elsewhere (a checkpoint that arrives
// quantized): `stored` holds each input's stored value (q + 8 for kInt4 / kInt4G128, low nibble
// used; q + 128 for kInt8, where q = -128 is representable too), `scales` one f16 scale per
// quant_scale_inputs(t) inputs.
//   stored [n], scales [n / quant_scale_inputs(t)] (f16 bits), out [row_bytes(t, n)]
void encode_row(DType t, const uint8_t* stored, const uint16_t* scales, int64_t n, uint8_t* out);

// The quantizer and dequantizer of a quantized type's weight rows (kInt8, kInt4 or kInt4G128, in
// dtype.h's interleaved layouts), for code that handles them all. kInt4G128 quantizes as kInt4
// does, with the scale set by the largest magnitude of each 128 inputs instead of each 32.
//   x [n] (n a multiple of quant_scale_inputs(t)), out / row [row_bytes(t, n)]
void quantize_row(DType t, const float* x, int64_t n, uint8_t* out);
void dequantize_row(DType t, const uint8_t* row, int64_t n, float* out);

// Where a row's f16 scales start: after its values (n bytes for kInt8, n / 2 for the int4 types).
inline int64_t quant_scales_offset(DType t, int64_t n) {
  return is_int4(t) ? n / 2 : n;
}

// Where the f16 scale of block b (inputs 32b .. 32b + 31) of a row of n inputs is.
inline int64_t quant_scale_at(DType t, int64_t n, int64_t b) {
  return quant_scales_offset(t, n) + b / quant_scale_blocks(t) * 2;
}

}  // namespace shardlm
