#version 460
// Rotary embedding, rotate_half (NeoX) style, in place: for i < half with
// angle = float(pos[t]) * inv_freq[i] (the f32 product, as the reference computes it):
//   (x[i], x[i + half]) <- (x[i] c - x[i + half] s, x[i + half] c + x[i] s)
//   x [n_tokens, n_head, 2 * half] (f32), pos [n_tokens] (int32, parameter arena),
//   inv_freq [half] (f32)
// cos/sin are computed here to ~1 ulp over the whole range of angles (Cody-Waite reduction by
// pi/2 in three parts, then the Cephes minimax polynomials), because Vulkan only promises an
// absolute error of 2^-11 for the built-in sin/cos, which is not enough for parity.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t x, pos, inv_freq;
  uint n_tokens, n_head, half_dim;
};

// (cos a, sin a) for |a| up to ~5e4 radians.
vec2 cos_sin(float a) {
  const float k = roundEven(a * 0.636619772367581343f);  // a / (pi/2)
  precise float r = a - k * 1.5703125f;                  // pi/2 in three parts: exact products
  r = r - k * 4.837512969970703125e-4f;
  r = r - k * 7.54978995489188216e-8f;
  const float z = r * r;
  const float s = r + r * z * (-1.6666654611e-1f + z * (8.3321608736e-3f + z * -1.9515295891e-4f));
  const float c = 1.0f - 0.5f * z +
                  z * z * (4.166664568298827e-2f + z * (-1.388731625493765e-3f +
                                                        z * 2.443315711809948e-5f));
  const int q = int(k) & 3;
  if (q == 0) return vec2(c, s);
  if (q == 1) return vec2(-s, c);
  if (q == 2) return vec2(-c, -s);
  return vec2(s, -c);
}

void main() {
  Params p = Params(pc.params);
  const uint idx = flat_group() * 256u + gl_LocalInvocationID.x;
  if (idx >= p.n_tokens * p.n_head * p.half_dim) return;
  const uint i = idx % p.half_dim;
  const uint th = idx / p.half_dim;  // t * n_head + h
  const uint t = th / p.n_head;
  precise const float angle = float(I32(p.pos).v[t]) * F32(p.inv_freq).v[i];
  const vec2 cs = cos_sin(angle);
  F32 x = F32(p.x);
  const uint base = th * 2u * p.half_dim;
  const float a = x.v[base + i], b = x.v[base + i + p.half_dim];
  x.v[base + i] = a * cs.x - b * cs.y;
  x.v[base + i + p.half_dim] = b * cs.x + a * cs.y;
}
