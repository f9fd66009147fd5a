#version 460
// Vocab-parallel embedding lookup: out[t, i] = table[ids[t] - vocab_start, i], or 0 when the id
// is outside this rank's rows [vocab_start, vocab_start + n_vocab_local).
//   ids   [n_tokens]               (int32, in the parameter arena)
//   table [n_vocab_local, n_embd]  (WTYPE; int8 / int4 rows dequantized)
//   out   [n_tokens, n_embd]       (f32)
// One invocation per output element; groups spread over x/y.
#include "common.glsl"
layout(local_size_x = 256) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t ids, table, out_;
  uint n_tokens, n_embd;
  int vocab_start, n_vocab_local;
};

void main() {
  Params p = Params(pc.params);
  const uint idx = flat_group() * 256u + gl_LocalInvocationID.x;
  if (idx >= p.n_tokens * p.n_embd) return;
  const uint t = idx / p.n_embd, i = idx % p.n_embd;
  const int row = I32(p.ids).v[t] - p.vocab_start;
  float v = 0.0;
#if WTYPE >= 3
  if (row >= 0 && row < p.n_vocab_local) v = load_wq(p.table, uint(row), p.n_embd, i);
#else
  if (row >= 0 && row < p.n_vocab_local) v = load_w(p.table, uint(row) * p.n_embd + i);
#endif
  F32(p.out_).v[idx] = v;
}
