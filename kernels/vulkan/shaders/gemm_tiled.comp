#version 460
// Tiled matrix product for many tokens (prefill): y = x @ W^T (+ bias), fp32 accumulation.
//   x [n_tokens, n_in] (f32), w [n_out, n_in] (WTYPE), bias [n_out] (f32, optional),
//   y [n_tokens, n_out] (f32)
// A workgroup of 256 computes a BM x BN tile (output features x tokens): BK-deep slices of W and
// x are staged in shared memory as f32, and each invocation accumulates a 4 x 4 block.
// The portable fallback for devices without cooperative-matrix support; used when
// n_tokens > 8 (gemv.comp handles fewer).
#include "common.glsl"
#define BM 64
#define BN 64
#define BK 16
layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t x, w, bias, y;
  uint n_tokens, n_in, n_out, has_bias, vec4_ok;
};

shared float ws[BK][BM + 4];
shared float xs[BK][BN + 4];

void main() {
  Params p = Params(pc.params);
  const uint tid = gl_LocalInvocationID.x;
  const uint tx = tid % 16u, ty = tid / 16u;  // token group, row group
  const uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;
  const uint lr = tid / 4u, lk = (tid % 4u) * 4u;  // loader: tile row, k offset
  const uint n_in = p.n_in;
  const bool v4 = p.vec4_ok != 0u;
  F32 x = F32(p.x);
  F32x4 x4 = F32x4(p.x);

  float acc[4][4];
  [[unroll]] for (uint i = 0; i < 4; ++i) {
    [[unroll]] for (uint j = 0; j < 4; ++j) acc[i][j] = 0.0;
  }

  for (uint k0 = 0; k0 < n_in; k0 += BK) {
    const uint kk = k0 + lk;
    vec4 wv = vec4(0.0), xv = vec4(0.0);
    const uint row = m0 + lr, tok = n0 + lr;
    if (row < p.n_out && kk < n_in) {
      if (v4) {
        wv = load_w4(p.w, (row * n_in + kk) / 4u);
      } else {
        [[unroll]] for (uint j = 0; j < 4; ++j) {
          if (kk + j < n_in) wv[j] = load_w(p.w, row * n_in + kk + j);
        }
      }
    }
    if (tok < p.n_tokens && kk < n_in) {
      if (v4) {
        xv = x4.v[(tok * n_in + kk) / 4u];
      } else {
        [[unroll]] for (uint j = 0; j < 4; ++j) {
          if (kk + j < n_in) xv[j] = x.v[tok * n_in + kk + j];
        }
      }
    }
    [[unroll]] for (uint j = 0; j < 4; ++j) {
      ws[lk + j][lr] = wv[j];
      xs[lk + j][lr] = xv[j];
    }
    barrier();
    [[unroll]] for (uint k = 0; k < BK; ++k) {
      float a[4], b[4];
      [[unroll]] for (uint i = 0; i < 4; ++i) a[i] = ws[k][ty * 4u + i];
      [[unroll]] for (uint j = 0; j < 4; ++j) b[j] = xs[k][tx * 4u + j];
      [[unroll]] for (uint i = 0; i < 4; ++i) {
        [[unroll]] for (uint j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
      }
    }
    barrier();
  }

  F32 y = F32(p.y);
  [[unroll]] for (uint i = 0; i < 4; ++i) {
    const uint row = m0 + ty * 4u + i;
    if (row >= p.n_out) continue;
    const float b = p.has_bias != 0u ? F32(p.bias).v[row] : 0.0;
    [[unroll]] for (uint j = 0; j < 4; ++j) {
      const uint tok = n0 + tx * 4u + j;
      if (tok < p.n_tokens) y.v[tok * p.n_out + row] = acc[i][j] + b;
    }
  }
}
