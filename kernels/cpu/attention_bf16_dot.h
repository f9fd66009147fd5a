// Decode attention scores with VDPBF16PS (AVX-512 BF16): the query, already rounded to bf16 in
// the bf16 activation mode, against a bf16 KV pool's K rows read in place, products exact and
// summed in f32, so no row is widened. Compiled only where the compiler takes -mavx512bf16
// (SHARDLM_CPU_BF16_DOT) and called only when bf16_dot_supported() (paged_attention.cpp's row
// items). Nothing here threads, allocates or throws. Not P.V and not the softmax. Internal to
// kernels/cpu.
#pragma once

#include <cstdint>

namespace shardlm::cpu {

// s[j] = scale * (q . k[j]) for j < n_keys; head_dim a multiple of 32, at most 256. Keys come 16
// at a time (then one by one), reduced by the same tree either way, so a key's bits depend on
// neither its place in [0, n_keys) nor the other keys (denormal inputs flushed to zero, as the
// instruction does). The rows of the next 16 keys are prefetched unless `prefetch` is false (the
// caller has just read them: Context::touch_kv).
//   q [head_dim] bf16, k: n_keys pointers to rows of head_dim bf16, s [n_keys] f32
void attn_scores_row_bf16_dot(const uint16_t* q, const uint16_t* const* k, int64_t n_keys,
                              int64_t head_dim, float scale, float* s, bool prefetch = true);

// attn_scores_row_bf16_dot for the `group` query rows of one kv head (a GQA group) at once: each
// key's row is loaded once for all of them, and every score has the bits that function gives it.
// No prefetches: for keys already in cache (Context::touch_kv). Returns false, doing nothing,
// where it does not keep the rows' queries in registers (group x head_dim / 32 > 8; group 2, 4
// or 8 only), true otherwise (n_keys = 0 reads nothing: a way to ask).
//   q [group][ldq] bf16, k: n_keys pointers to rows of head_dim bf16, s [group][lds] f32
bool attn_scores_group_bf16_dot(const uint16_t* q, int64_t ldq, int64_t group,
                                const uint16_t* const* k, int64_t n_keys, int64_t head_dim,
                                float scale, float* s, int64_t lds);

}  // namespace shardlm::cpu
