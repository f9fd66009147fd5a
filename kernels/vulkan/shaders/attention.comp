#version 460
// Causal attention of new queries against one sequence's KV cache (row j = position j), for
// prefill and decode alike. Query t attends keys j <= pos[t] (and pos[t] - j < window when
// window > 0); GQA: query head h reads kv head h / (n_head / n_head_kv).
//   q   [n_tokens, n_head, head_dim] (f32)
//   k/v [n_kv, n_head_kv, head_dim]  (f32, the cache; only rows <= pos[t] are read)
//   pos [n_tokens]                   (int32, parameter arena)
//   out [n_tokens, n_head * head_dim]
// One workgroup per (head, token, split) = gl_WorkGroupID.xyz. Keys are visited in blocks of
// WG: each invocation scores one key, then the block's softmax weights update a running
// (max, sum, output) triple ("online softmax"); each invocation owns head_dim / WG output
// dimensions. head_dim <= WG * ND.
// With n_split == 1 the workgroup writes `out`. With n_split > 1 ("split-K", for decode on
// GPUs: more workgroups than heads), split s takes key blocks s, s + n_split, ... and writes
// its (max, sum, output[head_dim]) to `partial` [n_tokens, n_head, n_split, head_dim + 2];
// attention_combine.comp merges them. The split count is the host's choice and no dispatch
// size depends on the context length, so recorded command buffers stay valid as it grows.
#include "common.glsl"
#define WG 128
#define ND 4
layout(local_size_x = WG) in;
#include "reduce.glsl"

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t q, k, v, pos, out_, partial;
  uint n_tokens, n_head, n_head_kv, head_dim;
  int window;
  float scale;
  uint n_split;
};

shared float q_s[WG * ND];
shared float p_s[WG];

void main() {
  Params p = Params(pc.params);
  const uint tid = gl_LocalInvocationID.x;
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, split = gl_WorkGroupID.z;
  const uint n_split = p.n_split;
  const uint hd = p.head_dim;
  const uint kvh = h / (p.n_head / p.n_head_kv);
  const uint kv_stride = p.n_head_kv * hd;  // floats between consecutive positions
  F32 qb = F32(p.q);
  F32 kb = F32(p.k);
  F32 vb = F32(p.v);
  for (uint d = tid; d < hd; d += WG) q_s[d] = qb.v[(t * p.n_head + h) * hd + d];
  barrier();

  const int pos_t = I32(p.pos).v[t];
  const uint j_end = uint(pos_t) + 1u;
  const uint j_begin = p.window > 0 ? uint(max(0, pos_t - p.window + 1)) : 0u;

  float m = kNegHuge, l = 0.0;
  float acc[ND];
  [[unroll]] for (uint i = 0; i < ND; ++i) acc[i] = 0.0;

  for (uint blk = j_begin + split * WG; blk < j_end; blk += n_split * WG) {
    const uint j = blk + tid;
    float s = kNegHuge;
    if (j < j_end) {
      const uint kbase = j * kv_stride + kvh * hd;
      float d = 0.0;
      for (uint i = 0; i < hd; ++i) d += q_s[i] * kb.v[kbase + i];
      s = d * p.scale;
    }
    const float m_new = max(m, wg_max(s));
    const float e = j < j_end ? exp(s - m_new) : 0.0;
    p_s[tid] = e;
    const float block_sum = wg_sum(e);  // its barriers also publish p_s
    const float corr = exp(m - m_new);
    l = l * corr + block_sum;
    const uint n_blk = min(uint(WG), j_end - blk);
    [[unroll]] for (uint i = 0; i < ND; ++i) {
      const uint d = tid + i * WG;
      if (d < hd) {
        float a = acc[i] * corr;
        for (uint jj = 0; jj < n_blk; ++jj) a += p_s[jj] * vb.v[(blk + jj) * kv_stride + kvh * hd + d];
        acc[i] = a;
      }
    }
    m = m_new;
    barrier();  // p_s is rewritten by the next block
  }

  if (n_split == 1u) {
    F32 o = F32(p.out_);
    const float inv = l > 0.0 ? 1.0 / l : 0.0;
    [[unroll]] for (uint i = 0; i < ND; ++i) {
      const uint d = tid + i * WG;
      if (d < hd) o.v[(t * p.n_head + h) * hd + d] = acc[i] * inv;
    }
  } else {
    F32 part = F32(p.partial);
    const uint base = ((t * p.n_head + h) * n_split + split) * (hd + 2u);
    if (tid == 0) {
      part.v[base] = m;
      part.v[base + 1u] = l;
    }
    [[unroll]] for (uint i = 0; i < ND; ++i) {
      const uint d = tid + i * WG;
      if (d < hd) part.v[base + 2u + d] = acc[i];
    }
  }
}
