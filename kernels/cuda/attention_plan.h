// Host-side launch planning for the CUDA attention kernels: whether a call takes the split-K
// decode path or the tiled prefill path, and how many key splits the decode path uses.
// Pure arithmetic (no CUDA calls), so it is unit-tested without a GPU.
#pragma once

#include <cstdint>

namespace shardlm::cuda {

// The most key splits plan_attention picks.
inline constexpr int kMaxDecodeSplits = 128;

struct AttentionPlan {
  bool decode = false;  // split-K decode kernels (else the tiled prefill kernel)
  int n_splits = 1;     // key slices per (token, kv head, head chunk); decode only
};

// n_tokens query rows against at most `max_keys` visible keys per row, on a device with
// `n_sms` multiprocessors. Decode when n_tokens <= kDecodeMaxTokens; splits are chosen so the
// grid covers about 2 waves of blocks, each split keeps >= 64 keys, and at most kMaxDecodeSplits
// splits.
AttentionPlan plan_attention(int64_t n_tokens, int64_t n_head, int64_t n_head_kv, int64_t max_keys,
                             int n_sms);

}  // namespace shardlm::cuda
