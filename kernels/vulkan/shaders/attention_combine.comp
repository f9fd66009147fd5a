#version 460
// Merges the n_split partial results of split-K attention (attention.comp with n_split > 1):
// out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s, M = max m_s over splits that saw keys.
//   partial [n_tokens, n_head, n_split, head_dim + 2] (f32: m, l, acc[head_dim])
//   out     [n_tokens, n_head * head_dim]
// One workgroup per (head, token); each invocation owns head_dim / WG output dimensions.
#include "common.glsl"
#define WG 128
layout(local_size_x = WG) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t q, k, v, pos, out_, partial;
  uint n_tokens, n_head, n_head_kv, head_dim;
  int window;
  float scale;
  uint n_split;
};

void main() {
  Params p = Params(pc.params);
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
  const uint hd = p.head_dim, n_split = p.n_split;
  F32 part = F32(p.partial);
  const uint base = (t * p.n_head + h) * n_split * (hd + 2u);
  float m_all = kNegHuge;
  for (uint s = 0; s < n_split; ++s) {
    if (part.v[base + s * (hd + 2u) + 1u] > 0.0) m_all = max(m_all, part.v[base + s * (hd + 2u)]);
  }
  float den = 0.0;
  for (uint s = 0; s < n_split; ++s) {
    const float l = part.v[base + s * (hd + 2u) + 1u];
    if (l > 0.0) den += exp(part.v[base + s * (hd + 2u)] - m_all) * l;
  }
  const float inv = den > 0.0 ? 1.0 / den : 0.0;
  F32 o = F32(p.out_);
  for (uint d = gl_LocalInvocationID.x; d < hd; d += WG) {
    float num = 0.0;
    for (uint s = 0; s < n_split; ++s) {
      const uint b = base + s * (hd + 2u);
      if (part.v[b + 1u] > 0.0) num += exp(part.v[b] - m_all) * part.v[b + 2u + d];
    }
    o.v[(t * p.n_head + h) * hd + d] = num * inv;
  }
}
