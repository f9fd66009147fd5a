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
//   q + 128 (q in [-128, 127]; the quantizer gives [-127, 127], 8-bit GPTQ imports may hold -128)
//   followed by n / 32 f16 scales, one per block of 32 consecutive inputs: value = scale * q.
//   Rows of other lengths than a multiple of 32 are not representable. The bytes are interleaved
//   in groups of 16 blocks (512 inputs; the row's last group holds the G = n / 32 mod 16 blocks
//   left, when there are any): a group of G blocks takes 32 G bytes from byte 512 g, and its byte
//   4 G s + 4 j + i (s < 8, j < G, i < 4) holds input 32 j + 4 s + i of the group. int8_byte()
//   maps an input to its byte. (Quantized activations, quantize_row_int8, stay in input order.)
//   kInt4: the same blocks and scales, with 4-bit values q + 8 (q in [-8, 7]) packed two per byte
//   and interleaved in groups of 16 blocks (512 inputs; the row's last group holds the G = n / 32
//   mod 16 blocks left, when there are any): a group of G blocks takes 16 G bytes from byte 256 g
//   (g the group's index), and its byte 4 G s + 4 j + i (s < 4, j < G, i < 4) holds input
//   32 j + 8 s + i of the group in its low nibble and input 32 j + 8 s + 4 + i in its high one.
//   The n / 32 f16 scales follow the n / 2 bytes. So a 64-byte load holds 8 inputs of each of 16
//   blocks, one block per 32-bit lane: a kernel sums a whole group per lane in integers and
//   scales it once (kernels/cpu/gemv_quantized_vnni.cpp). int4_position() maps an input to its
//   byte and nibble. (Packs before this layout paired blocks instead; the pack reader refuses
//   them: formats/pack.fbs, Layout.)
//   kInt4G128: kInt4's values in kInt4's layout, with one f16 scale per 128 inputs (4 consecutive
//   blocks share it; GPTQ's usual group size) instead of one per 32: n / 128 scales follow the
//   n / 2 bytes, 4.125 bits per weight against kInt4's 4.5. Rows are whole multiples of 128.
//   kF8E4M3: 8-bit float (OCP FP8 E4M3, "e4m3fn": 1 sign, 4 exponent bits biased by 7, 3 mantissa
//   bits; no infinities, 0x7f / 0xff are NaN; largest finite 448, smallest subnormal 2^-9). A KV
//   cache element type only (the paged pool's rows; weights are never f8): narrowing rounds to
//   nearest even and saturates to +-448, so a KV value never becomes NaN.
enum class DType : uint8_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kInt8 = 3,
  kInt4 = 4,
  kF8E4M3 = 5,
  kInt4G128 = 6,
};

// Bytes per element (quantized types: 1, the value's byte; use row_bytes for whole rows).
size_t dtype_size(DType t);
// True for the 4-bit weight types (kInt4, kInt4G128: the same values and layout).
constexpr bool is_int4(DType t) {
  return t == DType::kInt4 || t == DType::kInt4G128;
}
// True for the block-quantized weight types (kInt8, kInt4, kInt4G128).
constexpr bool is_quantized(DType t) {
  return t == DType::kInt8 || is_int4(t);
}
// True for the element types a KV cache may hold (kF32, kF16, kBF16, kF8E4M3).
inline bool is_kv_dtype(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF8E4M3;
}
// Inputs per scale of the quantized types.
inline constexpr int64_t kQuantBlock = 32;
// Blocks per interleaved group of a quantized row (above).
inline constexpr int64_t kQuantGroupBlocks = 16;
// Blocks that share one f16 scale: 4 for kInt4G128, 1 for kInt8 and kInt4. Block b's scale is
// scale b / quant_scale_blocks(t) of its row.
constexpr int64_t quant_scale_blocks(DType t) {
  return t == DType::kInt4G128 ? 4 : 1;
}
// Inputs per f16 scale (32 or 128): a quantized row's length, and a tensor-parallel slice of its
// inputs, are whole multiples of it.
constexpr int64_t quant_scale_inputs(DType t) {
  return kQuantBlock * quant_scale_blocks(t);
}

// Where input i of a kInt4 row of n inputs is stored: the byte, and the nibble's shift (0: low,
// 4: high).
struct Int4Position {
  int64_t byte;
  int shift;
};
// Blocks in group g of a kInt8 or kInt4 row of n inputs: 16, or fewer in the last group.
inline int64_t quant_group_blocks(int64_t n, int64_t g) {
  const int64_t left = n / kQuantBlock - g * kQuantGroupBlocks;
  return left < kQuantGroupBlocks ? left : kQuantGroupBlocks;
}
// The byte of a kInt8 row of n inputs that holds input i.
inline int64_t int8_byte(int64_t n, int64_t i) {
  const int64_t g = i / (kQuantBlock * kQuantGroupBlocks);
  const int64_t G = quant_group_blocks(n, g);
  const int64_t j = i / kQuantBlock - g * kQuantGroupBlocks, p = i % kQuantBlock;
  return g * 512 + 4 * G * (p / 4) + 4 * j + p % 4;
}
inline Int4Position int4_position(int64_t n, int64_t i) {
  const int64_t g = i / (kQuantBlock * kQuantGroupBlocks);
  const int64_t G = quant_group_blocks(n, g);
  const int64_t j = i / kQuantBlock - g * kQuantGroupBlocks, p = i % kQuantBlock;
  return {g * 256 + 4 * G * (p / 8) + 4 * j + p % 4, (p % 8) >= 4 ? 4 : 0};
}
// Bytes of one row of n elements (n a multiple of quant_scale_inputs(t) for quantized types).
size_t row_bytes(DType t, int64_t n);
// "f32", "f16", "bf16", "int8", "int4", "f8e4m3", "int4g128".
const char* dtype_name(DType t);
// Accepts "f32|float32|fp32", "f16|float16|fp16|half", "bf16|bfloat16",
// "f8e4m3|fp8|fp8_e4m3|float8_e4m3fn" (case-insensitive). Not the quantized weight types.
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

// kF8E4M3 <-> f32. f32_to_f8e4m3 rounds to nearest even, saturates finite and infinite values
// beyond +-448 to +-448 and keeps NaN (0x7f with the sign). f8e4m3_to_f32 is exact.
uint8_t f32_to_f8e4m3(float f);
float f8e4m3_to_f32(uint8_t b);

// Converts n elements from `src` (type `from`) to `dst` (type `to`). Same type is a memcpy.
// Float types only (quantized rows: runtime/core/quant.h).
void convert_dtype(const void* src, DType from, void* dst, DType to, size_t n);

}  // namespace shardlm
