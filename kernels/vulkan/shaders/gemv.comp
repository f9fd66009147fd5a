#version 460
// Matrix-vector product for few tokens (decode): y = x @ W^T (+ bias), fp32 accumulation.
//   x [n_tokens, n_in] (f32), w [n_out, n_in] (WTYPE), bias [n_out] (f32, optional),
//   y [n_tokens, n_out] (f32)
// Each workgroup computes R output rows for up to NT tokens (gl_WorkGroupID.z picks the token
// chunk): its invocations stride over n_in (4 weights per load when vec4_ok: n_in % 4 == 0 and
// aligned x/w), then the partial sums are reduced across the workgroup (subgroupAdd + one
// shared-memory step, or a shared-memory tree). Weights are read once per token chunk, so the
// host uses this kernel for n_tokens <= NT and gemm_tiled.comp above that.
#include "common.glsl"
#define WG 128
#define R 2
#define NT 8
layout(local_size_x = WG) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t x, w, bias, y;
  uint n_tokens, n_in, n_out, has_bias, vec4_ok;
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

  if (p.vec4_ok != 0u) {
    const uint n4 = n_in / 4u;
    F32x4 x4 = F32x4(p.x);
    for (uint k = tid; k < n4; k += WG) {
      vec4 xv[NT];
      [[unroll]] for (uint t = 0; t < NT; ++t) {
        if (t < nt) xv[t] = x4.v[(t0 + t) * n4 + k];
      }
      [[unroll]] for (uint r = 0; r < R; ++r) {
        if (row0 + r < p.n_out) {
          const vec4 wv = load_w4(p.w, (row0 + r) * n4 + k);
          [[unroll]] for (uint t = 0; t < NT; ++t) {
            if (t < nt) acc[r][t] += dot(wv, xv[t]);
          }
        }
      }
    }
  } else {
    F32 x = F32(p.x);
    for (uint k = tid; k < n_in; k += WG) {
      float xv[NT];
      [[unroll]] for (uint t = 0; t < NT; ++t) {
        if (t < nt) xv[t] = x.v[(t0 + t) * n_in + k];
      }
      [[unroll]] for (uint r = 0; r < R; ++r) {
        if (row0 + r < p.n_out) {
          const float wv = load_w(p.w, (row0 + r) * n_in + k);
          [[unroll]] for (uint t = 0; t < NT; ++t) {
            if (t < nt) acc[r][t] += wv * xv[t];
          }
        }
      }
    }
  }

#if SUBGROUP
  [[unroll]] for (uint r = 0; r < R; ++r) {
    [[unroll]] for (uint t = 0; t < NT; ++t) {
      const float s = subgroupAdd(acc[r][t]);
      if (subgroupElect()) part[r * NT + t][gl_SubgroupID] = s;
    }
  }
  barrier();
  if (tid < R * NT) {
    const uint r = tid / NT, t = tid % NT;
    if (row0 + r < p.n_out && t < nt) {
      float s = 0.0;
      for (uint i = 0; i < gl_NumSubgroups; ++i) s += part[tid][i];
      if (p.has_bias != 0u) s += F32(p.bias).v[row0 + r];
      F32(p.y).v[(t0 + t) * p.n_out + row0 + r] = s;
    }
  }
#else
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
#endif
}
