#version 460
// dst = src[:, col_begin : col_begin + n_cols] (splits the fused QKV projection).
//   src [n_rows, n_src_cols], dst [n_rows, n_cols] (f32)
#include "common.glsl"
layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t src, dst;
  uint n_rows, n_src_cols, col_begin, n_cols;
};

void main() {
  Params p = Params(pc.params);
  const uint idx = flat_group() * 256u + gl_LocalInvocationID.x;
  if (idx >= p.n_rows * p.n_cols) return;
  const uint r = idx / p.n_cols, c = idx % p.n_cols;
  F32(p.dst).v[idx] = F32(p.src).v[r * p.n_src_cols + p.col_begin + c];
}
