#version 460
// Matrix-vector product for few tokens (decode): y = x @ W^T (+ bias), fp32 accumulation.
//   x [n_tokens, n_in] (f32), w [n_out, n_in] (WTYPE), bias [n_out] (f32, optional),
//   y [n_tokens, n_out] (f32)
// gl_WorkGroupID.z picks a chunk of up to NT tokens (the build makes NT = 1 "gemv" for decode
// and NT = 8 "gemv8"); weights are read once per chunk, so the host uses gemm_tiled.comp above
// 8 tokens. Weights are loaded 8 at a time when n_in % 8 == 0 and x/w are aligned, 4 at a time
// when vec4_ok (n_in % 4 == 0), else one by one.
//   SUBGROUP 1: a workgroup owns p.rows_per_group rows (the host's choice: RS per subgroup);
//               each subgroup computes RS whole rows at a time, sharing the x loads: its lanes
//               stride over n_in, then subgroupAdd. No shared memory and no barriers, for any
//               subgroup size.
//   SUBGROUP 0: a workgroup owns R rows; all invocations stride over n_in and a shared-memory
//               tree reduces the partial sums.
#include "common.glsl"
#define WG 128
#define R 2
#ifndef NT
#define NT 8  // tokens per workgroup (the build also makes an NT = 1 decode variant)
#endif
#if NT == 1
#define RS 8  // rows per subgroup step (registers: RS * NT accumulators)
#else
#define RS 4
#endif
layout(local_size_x = WG) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t x, w, bias, y;
  uint n_tokens, n_in, n_out, has_bias, vec4_ok, rows_per_group;
};

#if SUBGROUP
// Rows [row, row + RS) of one subgroup: x is loaded once per step for all RS rows.
void main() {
  Params p = Params(pc.params);
  const uint rows = p.rows_per_group;  // the host's choice: RS * subgroups per workgroup
  const uint row_begin = flat_group() * rows;
  const uint t0 = gl_WorkGroupID.z * NT;
  const uint nt = min(uint(NT), p.n_tokens - t0);
  const uint n_in = p.n_in, n_out = p.n_out;
  const uint lane = gl_SubgroupInvocationID, step = gl_SubgroupSize;
  const uint64_t w = p.w;
  for (uint r0 = gl_SubgroupID * RS; r0 < rows; r0 += gl_NumSubgroups * RS) {
    const uint row0 = row_begin + r0;
    if (row0 >= n_out) break;
    const uint last = n_out - 1u;  // rows past the end recompute the last row, unwritten
    float acc[RS][NT];
    [[unroll]] for (uint r = 0; r < RS; ++r) {
      [[unroll]] for (uint t = 0; t < NT; ++t) acc[r][t] = 0.0;
    }
    if (p.vec4_ok != 0u && (n_in & 7u) == 0u) {  // 8 weights per load
      const uint n8 = n_in / 8u, n4 = n_in / 4u;
      F32x4 x4 = F32x4(p.x);
      for (uint k = lane; k < n8; k += step) {
        vec4 xlo[NT], xhi[NT];
        [[unroll]] for (uint t = 0; t < NT; ++t) {
          if (NT == 1 || t < nt) {
            xlo[t] = x4.v[(t0 + t) * n4 + 2u * k];
            xhi[t] = x4.v[(t0 + t) * n4 + 2u * k + 1u];
          }
        }
        [[unroll]] for (uint r = 0; r < RS; ++r) {
          vec4 lo, hi;
          load_w8(w, min(row0 + r, last) * n8 + k, lo, hi);
          [[unroll]] for (uint t = 0; t < NT; ++t) {
            if (NT == 1 || t < nt) acc[r][t] += dot(lo, xlo[t]) + dot(hi, xhi[t]);
          }
        }
      }
    } else if (p.vec4_ok != 0u) {
      const uint n4 = n_in / 4u;
      F32x4 x4 = F32x4(p.x);
      for (uint k = lane; k < n4; k += step) {
        vec4 xv[NT];
        [[unroll]] for (uint t = 0; t < NT; ++t) {
          if (NT == 1 || t < nt) xv[t] = x4.v[(t0 + t) * n4 + k];
        }
        [[unroll]] for (uint r = 0; r < RS; ++r) {
          const vec4 wv = load_w4(w, min(row0 + r, last) * n4 + k);
          [[unroll]] for (uint t = 0; t < NT; ++t) {
            if (NT == 1 || t < nt) acc[r][t] += dot(wv, xv[t]);
          }
        }
      }
    } else {
      F32 x = F32(p.x);
      for (uint k = lane; k < n_in; k += step) {
        float xv[NT];
        [[unroll]] for (uint t = 0; t < NT; ++t) {
          if (NT == 1 || t < nt) xv[t] = x.v[(t0 + t) * n_in + k];
        }
        [[unroll]] for (uint r = 0; r < RS; ++r) {
          const float wv = load_w(w, min(row0 + r, last) * n_in + k);
          [[unroll]] for (uint t = 0; t < NT; ++t) {
            if (NT == 1 || t < nt) acc[r][t] += wv * xv[t];
          }
        }
      }
    }
    [[unroll]] for (uint r = 0; r < RS; ++r) {
      const uint row = row0 + r;
      if (row < n_out) {
        const float b = p.has_bias != 0u ? F32(p.bias).v[row] : 0.0;
        [[unroll]] for (uint t = 0; t < NT; ++t) {
          if (NT == 1 || t < nt) {
            const float s = subgroupAdd(acc[r][t]);
            if (subgroupElect()) F32(p.y).v[(t0 + t) * n_out + row] = s + b;
          }
        }
      }
    }
  }
}
#else
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
#endif
