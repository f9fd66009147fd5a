#version 460
// Causal attention of a whole step (many sequences, decode tokens and prefill chunks mixed)
// against one layer's paged KV pools, read through each sequence's block table. Query token t of
// sequence s = seq[t] attends the keys of s at positions j <= pos[t] (and pos[t] - j < window when
// window > 0); key j lives at slot block_table[s * max_blocks + j / block_size] * block_size +
// j % block_size. GQA: query head h reads kv head h / (n_head / n_head_kv). K and V are widened
// to f32 exactly (WTYPE 0 f32, 1 f16, 2 bf16; W16 1: through 16-bit storage, 0: 32-bit words).
// Not the writes into the pools (store_kv.comp) and not the bookkeeping of which block is whose.
//   q           [n_tokens, n_head, head_dim] f32
//   k/v pools   [n_slots, n_head_kv, head_dim] (KV dtype); only mapped positions are read
//   pos, seq    [n_tokens] int32 (parameter arena)
//   block_table [n_seqs, max_blocks] int32 (parameter arena)
//   out         [n_tokens, n_head * head_dim] f32
// The algorithm is attention.comp's: one workgroup per (head, token, split) =
// gl_WorkGroupID.xyz, keys in blocks of WG (each invocation scores one key, online softmax over
// the blocks), each invocation owning head_dim / WG output dimensions, head_dim <= WG * ND.
// n_split > 1 ("split-K", decode on GPUs) writes partials that attention_combine.comp merges:
// the parameter block starts with attention.comp's, which the merge reads. No dispatch size
// depends on a context length, so recorded command buffers stay valid as sequences grow.
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
  uint pad0_;
  uint64_t seq, block_table;
  uint block_size, max_blocks;
  uint vec4_k;  // 1: head_dim % 4 == 0 and the K pool is aligned for 4-element loads
};

shared float q_s[WG * ND];
shared float p_s[WG];
shared uint row_s[WG];  // element index of each key's [head_dim] row in the pools

void main() {
  Params p = Params(pc.params);
  const uint tid = gl_LocalInvocationID.x;
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, split = gl_WorkGroupID.z;
  const uint n_split = p.n_split;
  const uint hd = p.head_dim;
  const uint kvh = h / (p.n_head / p.n_head_kv);
  const uint64_t kaddr = p.k, vaddr = p.v;
  F32 qb = F32(p.q);
  for (uint d = tid; d < hd; d += WG) q_s[d] = qb.v[(t * p.n_head + h) * hd + d];
  barrier();

  const int pos_t = I32(p.pos).v[t];
  const uint s = uint(I32(p.seq).v[t]);
  I32 bt = I32(p.block_table);
  const uint bt_row = s * p.max_blocks, bs = p.block_size;
  const bool vec4_k = p.vec4_k != 0u;
  const uint j_end = uint(pos_t) + 1u;
  const uint j_begin = p.window > 0 ? uint(max(0, pos_t - p.window + 1)) : 0u;

  float m = kNegHuge, l = 0.0;
  float acc[ND];
  [[unroll]] for (uint i = 0; i < ND; ++i) acc[i] = 0.0;

  for (uint blk = j_begin + split * WG; blk < j_end; blk += n_split * WG) {
    const uint j = blk + tid;
    float sc = kNegHuge;
    uint row = 0u;
    if (j < j_end) {
      const uint slot = uint(bt.v[bt_row + j / bs]) * bs + j % bs;
      row = (slot * p.n_head_kv + kvh) * hd;
      float d = 0.0;
      if (vec4_k) {
        const uint r4 = row >> 2;
        for (uint i4 = 0; i4 < (hd >> 2); ++i4) {
          const vec4 kk = load_w4(kaddr, r4 + i4);
          const uint i = i4 << 2;
          d += q_s[i] * kk.x + q_s[i + 1u] * kk.y + q_s[i + 2u] * kk.z + q_s[i + 3u] * kk.w;
        }
      } else {
        for (uint i = 0; i < hd; ++i) d += q_s[i] * load_w(kaddr, row + i);
      }
      sc = d * p.scale;
    }
    row_s[tid] = row;
    const float m_new = max(m, wg_max(sc));
    const float e = j < j_end ? exp(sc - m_new) : 0.0;
    p_s[tid] = e;
    const float block_sum = wg_sum(e);  // its barriers also publish p_s and row_s
    const float corr = exp(m - m_new);
    l = l * corr + block_sum;
    const uint n_blk = min(uint(WG), j_end - blk);
    [[unroll]] for (uint i = 0; i < ND; ++i) {
      const uint d = tid + i * WG;
      if (d < hd) {
        float a = acc[i] * corr;
        for (uint jj = 0; jj < n_blk; ++jj) a += p_s[jj] * load_w(vaddr, row_s[jj] + d);
        acc[i] = a;
      }
    }
    m = m_new;
    barrier();  // p_s and row_s are rewritten by the next block
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
