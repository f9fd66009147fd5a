#version 460
// RMSNorm per row: out = w * (x * 1/sqrt(mean(x^2) + eps)). `out` may alias `x` (each
// workgroup reads its whole row before writing it).
//   x [n_rows, n], w [n] (f32), out [n_rows, n]
// One workgroup per row (groups spread over x/y), fp32 accumulation.
#include "common.glsl"
#define WG 256
layout(local_size_x = WG) in;
#include "reduce.glsl"

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t x, w, out_;
  uint n_rows, n;
  float eps;
};

void main() {
  Params p = Params(pc.params);
  const uint row = flat_group();
  if (row >= p.n_rows) return;  // uniform per workgroup
  const uint tid = gl_LocalInvocationID.x;
  const uint base = row * p.n;
  F32 x = F32(p.x);
  float ss = 0.0;
  for (uint i = tid; i < p.n; i += WG) {
    const float v = x.v[base + i];
    ss += v * v;
  }
  ss = wg_sum(ss);
  const float inv = 1.0 / sqrt(ss / float(p.n) + p.eps);
  F32 w = F32(p.w);
  F32 o = F32(p.out_);
  for (uint i = tid; i < p.n; i += WG) o.v[base + i] = w.v[i] * (x.v[base + i] * inv);
}
