// Shared declarations for every shardlm compute shader: buffer references (all tensors are
// addressed by 64-bit device addresses, never descriptor sets), the per-op parameter block
// reached through the single push constant, weight loads for f32/f16/bf16 (with and without
// 16-bit storage), and workgroup reductions (subgroup arithmetic, or a shared-memory tree when
// the device lacks it). Not a shader by itself: each .comp includes it.
//
// Compile-time switches (set by kernels/vulkan/CMakeLists.txt per variant):
//   WTYPE    0 = f32, 1 = f16, 2 = bf16, 3 = int8, 4 = int4, 6 = int4g128 weights (only shaders that read
//            weights; the quantized ones through load_wq)
//   W16      1 = read 16-bit weights through 16-bit storage, 0 = through 32-bit words
//   SUBGROUP 1 = reduce with subgroup arithmetic, 0 = shared-memory tree
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_control_flow_attributes : require
#if W16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#if SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#ifndef WTYPE
#define WTYPE 0
#endif
#ifndef W16
#define W16 0
#endif
#ifndef SUBGROUP
#define SUBGROUP 0
#endif

layout(push_constant) uniform PushConstants { uint64_t params; } pc;

layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) buffer F32x4 { vec4 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer I32 { int v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer WU32 { uint v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer WU32x2 { uvec2 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer WU32x4 { uvec4 v[]; };
#if W16
layout(buffer_reference, std430, buffer_reference_align = 2) readonly buffer WF16 { float16_t v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer WF16x4 { f16vec4 v[]; };
layout(buffer_reference, std430, buffer_reference_align = 2) readonly buffer WU16 { uint16_t v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer WU16x4 { u16vec4 v[]; };
#endif

// A very negative finite number: "minus infinity" without relying on IEEE infinities, which
// Vulkan implementations need not honour under relaxed precision.
const float kNegHuge = -3.0e38;

float bf16_lo(uint u) { return uintBitsToFloat(u << 16); }
float bf16_hi(uint u) { return uintBitsToFloat(u & 0xFFFF0000u); }

// Weight element i (of a tensor whose element 0 is at address w) widened to f32.
float load_w(uint64_t w, uint i) {
#if WTYPE == 0
  return F32(w).v[i];
#elif W16 && WTYPE == 1
  return float(WF16(w).v[i]);
#elif W16 && WTYPE == 2
  return uintBitsToFloat(uint(WU16(w).v[i]) << 16);
#else
  const uint u = WU32(w).v[i >> 1];
#if WTYPE == 1
  return unpackHalf2x16(u)[i & 1u];
#else
  return (i & 1u) == 0u ? bf16_lo(u) : bf16_hi(u);
#endif
#endif
}

// Weight elements 4*i4 .. 4*i4+3; needs w 16-byte (f32) or 8-byte (16-bit) aligned.
vec4 load_w4(uint64_t w, uint i4) {
#if WTYPE == 0
  return F32x4(w).v[i4];
#elif W16 && WTYPE == 1
  return vec4(WF16x4(w).v[i4]);
#elif W16 && WTYPE == 2
  const uvec4 u = uvec4(WU16x4(w).v[i4]);
  return uintBitsToFloat(u << 16);
#else
  const uvec2 u = WU32x2(w).v[i4];
#if WTYPE == 1
  return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
#else
  return vec4(bf16_lo(u.x), bf16_hi(u.x), bf16_lo(u.y), bf16_hi(u.y));
#endif
#endif
}

// Weight elements 8*i8 .. 8*i8+7 as two vec4; needs w 32-byte (f32) or 16-byte aligned.
void load_w8(uint64_t w, uint i8, out vec4 lo, out vec4 hi) {
#if WTYPE == 0
  lo = F32x4(w).v[2u * i8];
  hi = F32x4(w).v[2u * i8 + 1u];
#elif W16
  lo = load_w4(w, 2u * i8);
  hi = load_w4(w, 2u * i8 + 1u);
#else
  const uvec4 u = WU32x4(w).v[i8];
#if WTYPE == 1
  lo = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
  hi = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
#else
  lo = vec4(bf16_lo(u.x), bf16_hi(u.x), bf16_lo(u.y), bf16_hi(u.y));
  hi = vec4(bf16_lo(u.z), bf16_hi(u.z), bf16_lo(u.w), bf16_hi(u.w));
#endif
#endif
}

// Byte `off` of the buffer at address `base` (any alignment), through the 4-byte word holding it.
uint load_byte(uint64_t base, uint64_t off) {
  const uint64_t a = base + off;
  return (WU32(a & ~uint64_t(3)).v[0] >> (uint(a & uint64_t(3)) * 8u)) & 0xFFu;
}

// Element k of row `row` of a block-quantized matrix with n_in inputs per row (WTYPE 3: int8,
// 4: int4, 6: int4g128; row layouts in runtime/core/dtype.h: the values, then one f16 scale per
// 32 inputs, or per 128 for int4g128),
// dequantized: scale * q. Rows are not 4-byte aligned (int8 rows are 34 bytes per 32 inputs), so
// bytes are read through their words.
float load_wq(uint64_t w, uint row, uint n_in, uint k) {
  const uint b = k / 32u;
#if WTYPE == 3
  const uint64_t r0 = uint64_t(row) * uint64_t(n_in + n_in / 16u);
  // Groups of 16 blocks (the last one G blocks): in group g, byte 512 g + 4 G s + 4 j + i holds
  // input 32 j + 4 s + i of the group.
  const uint p = k % 32u, g = b / 16u;
  const uint G = min(16u, n_in / 32u - 16u * g);
  const float q = float(int(load_byte(w, r0 + 512u * g + 4u * G * (p / 4u) + 4u * (b % 16u) + p % 4u)) - 128);
  const uint scale_at = n_in + b * 2u;
#else
#if WTYPE == 6
  const uint scale_blocks = 4u;
#else
  const uint scale_blocks = 1u;
#endif
  const uint64_t r0 = uint64_t(row) * uint64_t(n_in / 2u + n_in / (16u * scale_blocks));
  const uint p = k % 32u;
  // Groups of 16 blocks (the last one G blocks): in group g, byte 256 g + 4 G s + 4 j + i holds
  // input 32 j + 8 s + i of the group (low nibble) and 32 j + 8 s + 4 + i (high).
  const uint g = b / 16u;
  const uint G = min(16u, n_in / 32u - 16u * g);
  const uint at = 256u * g + 4u * G * (p / 8u) + 4u * (b % 16u) + p % 4u;
  const uint shift = (p % 8u) >= 4u ? 4u : 0u;
  const float q = float(int((load_byte(w, r0 + at) >> shift) & 15u) - 8);
  const uint scale_at = n_in / 2u + (b / scale_blocks) * 2u;
#endif
  const uint h = load_byte(w, r0 + scale_at) | (load_byte(w, r0 + scale_at + 1u) << 8u);
  return unpackHalf2x16(h).x * q;
}

// The workgroup's linear index when the host spreads many groups over x and y (x <= 65535).
uint flat_group() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }
