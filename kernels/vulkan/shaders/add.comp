#version 460
// In-place residual add: y[i] += x[i].   y, x [n] (f32)
#include "common.glsl"
layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t y, x;
  uint n;
};

void main() {
  Params p = Params(pc.params);
  const uint idx = flat_group() * 256u + gl_LocalInvocationID.x;
  if (idx >= p.n) return;
  F32 y = F32(p.y);
  y.v[idx] = y.v[idx] + F32(p.x).v[idx];
}
