// Host-side launch planning for the CUDA attention kernels: whether a call takes the split-K
// decode path or the tiled prefill path, and how many key splits the decode path uses; for a
// paged step (many sequences), which query tokens take which path. Pure arithmetic on host
// arrays (no CUDA calls), so it is unit-tested without a GPU.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace shardlm::cuda {

// The most key splits plan_attention picks.
inline constexpr int kMaxDecodeSplits = 128;

struct AttentionPlan {
  bool decode = false;  // split-K decode kernels (else the tiled prefill kernel)
  int n_splits = 1;     // key slices per (token, kv head, head chunk); decode only
};

// n_tokens query rows against at most `max_keys` visible keys per row, on a device with
// `n_sms` multiprocessors. Decode when n_tokens <= kDecodeMaxTokens; splits are chosen so the
// grid covers about 2 waves of blocks, each split keeps >= 32 keys, and at most kMaxDecodeSplits
// splits.
AttentionPlan plan_attention(int64_t n_tokens, int64_t n_head, int64_t n_head_kv, int64_t max_keys,
                             int n_sms);

// Key splits of the split-K decode kernel for `n_rows` query tokens (any number) that see at
// most `max_keys` keys: about 2 waves of blocks, >= 32 keys per split, <= kMaxDecodeSplits.
int decode_splits(int64_t n_rows, int64_t n_head, int64_t n_head_kv, int64_t max_keys, int n_sms);

// ---- Paged steps (paged_kv.cu) ----

// Which kernel serves which query tokens of a step: a sequence with at most kPagedDecodeMaxRun
// query tokens (cuda_ops.h) takes the split-K decode path, longer runs the tiled prefill path.
// Decode items are (token, sequence) pairs;
// prefill tiles are runs [tile_first, tile_end) of one sequence's tokens, at most
// paged_tile_tokens(...) long, ordered by their last position, largest first (the tiles with
// the most keys start first).
struct PagedAttentionPlan {
  std::vector<int32_t> decode_token, decode_seq;
  std::vector<int32_t> tile_seq, tile_first, tile_end;
  int64_t decode_max_keys = 0;  // the most keys a decode item sees
  int n_splits = 1;             // key splits of the decode kernel
};

// Tokens per prefill tile: kPagedTileRows / min(group, kPagedTileRows) (cuda_ops.h),
// group = n_head / n_head_kv.
int64_t paged_tile_tokens(int64_t n_head, int64_t n_head_kv);

// Plans a step. positions [n_tokens], seq_starts [n_seqs + 1] (validated by the caller:
// seq_starts ascending from 0 to n_tokens, positions >= 0).
PagedAttentionPlan plan_paged_attention(std::span<const int32_t> positions,
                                        std::span<const int32_t> seq_starts, int64_t n_head,
                                        int64_t n_head_kv, int64_t sliding_window, int n_sms);

}  // namespace shardlm::cuda
