#version 460
// Matmul with block-quantized weights (int8 / int4, WTYPE 3 / 4): y = x @ W^T (+ bias), each
// weight dequantized exactly (scale * q) and products summed in f32, for any token count.
//   x [n_tokens, n_in] (f32), w [n_out rows of row_bytes(WTYPE, n_in)], bias [n_out] (f32,
//   optional), y [n_tokens, n_out] (f32)
// A workgroup owns R rows and gl_WorkGroupID.z a chunk of NT tokens; its invocations stride over
// n_in and a shared-memory tree reduces the partial sums. Weights are read once per chunk of NT
// tokens (prefill re-reads them every NT tokens: correct everywhere, not tuned for speed).
// Bytes are read through 32-bit words (load_wq): no 8- or 16-bit storage needed.
#include "common.glsl"
#define WG 128
#define R 2
#define NT 8
layout(local_size_x = WG) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t x, w, bias, y;
  uint n_tokens, n_in, n_out, has_bias, vec4_ok, rows_per_group;
};

shared float part[R * NT][WG];

void main() {
  Params p = Params(pc.params);
  const uint tid = gl_LocalInvocationID.x;
  const uint row0 = flat_group() * R;
  const uint t0 = gl_WorkGroupID.z * NT;
  const uint nt = min(uint(NT), p.n_tokens - t0);
  const uint n_in = p.n_in;

  float acc[R][NT];
  [[unroll]] for (uint r = 0; r < R; ++r) {
    [[unroll]] for (uint t = 0; t < NT; ++t) acc[r][t] = 0.0;
  }
  F32 x = F32(p.x);
  for (uint k = tid; k < n_in; k += WG) {
    float xv[NT];
    [[unroll]] for (uint t = 0; t < NT; ++t) {
      if (t < nt) xv[t] = x.v[(t0 + t) * n_in + k];
    }
    [[unroll]] for (uint r = 0; r < R; ++r) {
      if (row0 + r < p.n_out) {
        const float wv = load_wq(p.w, row0 + r, n_in, k);
        [[unroll]] for (uint t = 0; t < NT; ++t) {
          if (t < nt) acc[r][t] += wv * xv[t];
        }
      }
    }
  }

  [[unroll]] for (uint r = 0; r < R; ++r) {
    [[unroll]] for (uint t = 0; t < NT; ++t) part[r * NT + t][tid] = acc[r][t];
  }
  barrier();
  [[unroll]] for (uint s = WG / 2; s > 0; s >>= 1) {
    if (tid < s) {
      [[unroll]] for (uint i = 0; i < R * NT; ++i) part[i][tid] += part[i][tid + s];
    }
    barrier();
  }
  if (tid < R * NT) {
    const uint r = tid / NT, t = tid % NT;
    if (row0 + r < p.n_out && t < nt) {
      float s = part[tid][0];
      if (p.has_bias != 0u) s += F32(p.bias).v[row0 + r];
      F32(p.y).v[(t0 + t) * p.n_out + row0 + r] = s;
    }
  }
}
