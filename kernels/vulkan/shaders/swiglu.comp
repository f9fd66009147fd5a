#version 460
// SwiGLU on the fused gate/up activation: out[t, i] = silu(gate[t, i]) * up[t, i].
//   gate_up [n_tokens, 2 * n_ff] (gate columns, then up columns), out [n_tokens, n_ff]
#include "common.glsl"
layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t gate_up, out_;
  uint n_tokens, n_ff;
};

void main() {
  Params p = Params(pc.params);
  const uint idx = flat_group() * 256u + gl_LocalInvocationID.x;
  if (idx >= p.n_tokens * p.n_ff) return;
  const uint t = idx / p.n_ff, i = idx % p.n_ff;
  F32 gu = F32(p.gate_up);
  const float g = gu.v[t * 2u * p.n_ff + i];
  const float u = gu.v[t * 2u * p.n_ff + p.n_ff + i];
  F32(p.out_).v[idx] = g / (1.0 + exp(-g)) * u;
}
