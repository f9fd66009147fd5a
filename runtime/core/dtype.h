// Element types of weights and activations, and scalar bf16/f16 <-> f32 conversion.
// The conversions are exact IEEE round-to-nearest-even; vectorized bulk conversion lives in
// kernels/cpu. This file knows nothing about tensors or backends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace shardlm {

// Values are stored in packs: never renumber.
//   kInt8: quantized weight matrices only (runtime/core/quant.h). Each row of n inputs is n bytes
//   q + 128 (q in [-128, 127]; quantize_row_int8 gives [-127, 127], 8-bit GPTQ imports may hold
//   -128) followed by n / 32 f16 scales, one per block of 32 consecutive inputs: value = scale * q.
//   Rows of other lengths than a multiple of 32 are not representable.
//   kInt4: the same blocks and scales, with 4-bit values q + 8 (q in [-8, 7]) packed two per byte:
//   each pair of blocks (64 inputs) is 32 bytes, byte j holding input j in its low nibble and
//   input j + 32 in its high nibble (a final lone block: 16 bytes, inputs j and j + 16); the
//   n / 32 f16 scales follow the n / 2 bytes. The pairing lets a kernel unpack one 32-byte load
//   into 64 consecutive inputs.
enum class DType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2, kInt8 = 3, kInt4 = 4 };

// Bytes per element (quantized types: 1, the value's byte; use row_bytes for whole rows).
size_t dtype_size(DType t);
// True for the block-quantized weight types (kInt8, kInt4).
inline bool is_quantized(DType t) {
  return t == DType::kInt8 || t == DType::kInt4;
}
// Inputs per scale of the quantized types.
inline constexpr int64_t kQuantBlock = 32;
// Bytes of one row of n elements (n a multiple of kQuantBlock for quantized types).
size_t row_bytes(DType t, int64_t n);
// "f32", "f16", "bf16", "int8", "int4".
const char* dtype_name(DType t);
// Accepts "f32|float32|fp32", "f16|float16|fp16|half", "bf16|bfloat16" (case-insensitive).
std::optional<DType> parse_dtype(std::string_view name);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements from `src` (type `from`) to `dst` (type `to`). Same type is a memcpy.
// Float types only (quantized rows: runtime/core/quant.h).
void convert_dtype(const void* src, DType from, void* dst, DType to, size_t n);

}  // namespace shardlm
