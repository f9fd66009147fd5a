#version 460
// The largest element of x and its index (the lowest index on ties).
//   x [n] (f32), out: {int32 index, f32 value}
// A single workgroup: each invocation scans a strided share, then a shared-memory tree keeps
// (value, index) pairs. Used for greedy decoding without reading the logits back.
#include "common.glsl"
#define WG 256
layout(local_size_x = WG) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t x, out_;
  uint n;
};

shared float best_v[WG];
shared uint best_i[WG];

void main() {
  Params p = Params(pc.params);
  const uint tid = gl_LocalInvocationID.x;
  F32 x = F32(p.x);
  float bv = kNegHuge;
  uint bi = 0xFFFFFFFFu;
  for (uint i = tid; i < p.n; i += WG) {
    const float v = x.v[i];
    if (bi == 0xFFFFFFFFu || v > bv) {
      bv = v;
      bi = i;
    }
  }
  best_v[tid] = bv;
  best_i[tid] = bi;
  barrier();
  [[unroll]] for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s) {
      const float ov = best_v[tid + s];
      const uint oi = best_i[tid + s];
      const uint mi = best_i[tid];
      if (oi != 0xFFFFFFFFu &&
          (mi == 0xFFFFFFFFu || ov > best_v[tid] || (ov == best_v[tid] && oi < mi))) {
        best_v[tid] = ov;
        best_i[tid] = oi;
      }
    }
    barrier();
  }
  if (tid == 0) {
    I32(p.out_).v[0] = int(best_i[0]);
    F32(p.out_).v[1] = best_v[0];
  }
}
