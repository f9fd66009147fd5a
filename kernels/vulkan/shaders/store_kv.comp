#version 460
// Writes a step's new K and V rows into one layer's paged pools at their slots, converted to the
// pools' dtype with the exact round-to-nearest-even (and NaN handling) of runtime/core/dtype.h
// (f32_to_bf16, f32_to_f16): the inputs are read as raw 32-bit words and converted with integer
// arithmetic only, so the result is bit-identical to kernels/ref on every device, denormals,
// infinities and NaNs included. Not the attention that reads the pools (paged_attention.comp).
//   k, v           [n_tokens, row] f32, row = n_head_kv * head_dim
//   slots          [n_tokens] int32 (parameter arena); slot < 0: the token is skipped
//   k_pool, v_pool [n_slots, row] in the KV dtype (WTYPE: 0 f32, 1 f16, 2 bf16)
// One invocation per element (f32 pools, or 16-bit pools through 16-bit storage, W16 = 1), or per
// pair of elements written as one 32-bit word (16-bit pools without 16-bit storage; needs an even
// row and 4-byte aligned pools, which the host checks). Groups spread over x and y (flat_group).
#include "common.glsl"
#define WG 256
layout(local_size_x = WG) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t k, v, slots, k_pool, v_pool;
  uint n_tokens, row;
};

layout(buffer_reference, std430, buffer_reference_align = 4) readonly buffer RU32 { uint v[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer OU32 { uint v[]; };
#if W16
layout(buffer_reference, std430, buffer_reference_align = 2) buffer OU16 { uint16_t v[]; };
#endif

// f32 bits -> bf16 bits: runtime/core/dtype.h f32_to_bf16.
uint to_bf16(uint bits) {
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (bits >> 16) | 0x0040u;  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return bits >> 16;
}

// f32 bits -> f16 bits: runtime/core/dtype.cpp f32_to_f16.
uint to_f16(uint bits) {
  const uint sign = (bits >> 16) & 0x8000u;
  const uint a = bits & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // overflow (incl. inf) after rounding
  if (a < 0x38800000u) {                         // subnormal or zero in f16
    if (a < 0x33000000u) return sign;            // rounds to zero
    const uint e = a >> 23;
    const uint mant = (a & 0x7fffffu) | 0x800000u;
    const uint shift = 126u - e;
    uint hm = mant >> shift;
    const uint rem = mant & ((1u << shift) - 1u);
    const uint halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (hm & 1u) != 0u)) ++hm;
    return sign | hm;
  }
  uint x = a - 0x38000000u;  // rebias exponent 127 -> 15
  x += 0xfffu + ((x >> 13) & 1u);
  return sign | (x >> 13);
}

uint convert(uint bits) {
#if WTYPE == 1
  return to_f16(bits);
#else
  return to_bf16(bits);
#endif
}

void main() {
  Params p = Params(pc.params);
  const uint i = flat_group() * WG + gl_LocalInvocationID.x;
  RU32 kin = RU32(p.k);
  RU32 vin = RU32(p.v);
#if WTYPE == 0 || W16
  // One element.
  if (i >= p.n_tokens * p.row) return;
  const uint t = i / p.row, e = i - t * p.row;
  const int slot = I32(p.slots).v[t];
  if (slot < 0) return;
  const uint dst = uint(slot) * p.row + e;
#if WTYPE == 0
  OU32(p.k_pool).v[dst] = kin.v[i];
  OU32(p.v_pool).v[dst] = vin.v[i];
#else
  OU16(p.k_pool).v[dst] = uint16_t(convert(kin.v[i]));
  OU16(p.v_pool).v[dst] = uint16_t(convert(vin.v[i]));
#endif
#else
  // One 32-bit word: elements 2i and 2i + 1, always in the same row (row is even).
  const uint half_row = p.row >> 1;
  if (i >= p.n_tokens * half_row) return;
  const uint t = i / half_row, w = i - t * half_row;
  const int slot = I32(p.slots).v[t];
  if (slot < 0) return;
  const uint dst = uint(slot) * half_row + w;
  OU32(p.k_pool).v[dst] = convert(kin.v[2u * i]) | (convert(kin.v[2u * i + 1u]) << 16);
  OU32(p.v_pool).v[dst] = convert(vin.v[2u * i]) | (convert(vin.v[2u * i + 1u]) << 16);
#endif
}
