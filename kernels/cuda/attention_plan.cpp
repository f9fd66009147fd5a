// plan_attention: the decode/prefill choice and the split-K factor; plan_paged_attention: the
// same choice per sequence of a paged step, and its prefill tiles.
#include "kernels/cuda/attention_plan.h"

#include <algorithm>
#include <numeric>

#include "kernels/cuda/cuda_ops.h"

namespace shardlm::cuda {

int decode_splits(int64_t n_rows, int64_t n_head, int64_t n_head_kv, int64_t max_keys, int n_sms) {
  constexpr int64_t kMaxGroup = 8;  // heads per decode block (attention_decode.cu, paged_kv.cu)
  constexpr int64_t kMinKeysPerSplit = 32;
  const int64_t group = n_head_kv > 0 ? std::max<int64_t>(1, n_head / n_head_kv) : 1;
  const int64_t blocks = std::max<int64_t>(1, n_rows) * std::max<int64_t>(1, n_head_kv) *
                         ((group + kMaxGroup - 1) / kMaxGroup);
  const int64_t want = std::max<int64_t>(1, (2 * std::max(1, n_sms) + blocks - 1) / blocks);
  const int64_t by_keys = std::max<int64_t>(1, max_keys / kMinKeysPerSplit);
  return static_cast<int>(std::min({want, by_keys, int64_t{kMaxDecodeSplits}}));
}

AttentionPlan plan_attention(int64_t n_tokens, int64_t n_head, int64_t n_head_kv, int64_t max_keys,
                             int n_sms) {
  AttentionPlan plan;
  plan.decode = n_tokens >= 1 && n_tokens <= kDecodeMaxTokens;
  if (!plan.decode) return plan;
  plan.n_splits = decode_splits(n_tokens, n_head, n_head_kv, max_keys, n_sms);
  return plan;
}

int64_t paged_tile_tokens(int64_t n_head, int64_t n_head_kv) {
  const int64_t group = n_head_kv > 0 ? std::max<int64_t>(1, n_head / n_head_kv) : 1;
  return kPagedTileRows / std::min<int64_t>(group, kPagedTileRows);
}

PagedAttentionPlan plan_paged_attention(std::span<const int32_t> positions,
                                        std::span<const int32_t> seq_starts, int64_t n_head,
                                        int64_t n_head_kv, int64_t sliding_window, int n_sms) {
  PagedAttentionPlan plan;
  const int64_t tile = paged_tile_tokens(n_head, n_head_kv);
  auto keys_of = [&](int32_t t) {
    const int64_t p = positions[static_cast<size_t>(t)];
    return sliding_window > 0 ? std::min<int64_t>(p + 1, sliding_window) : p + 1;
  };
  for (size_t s = 0; s + 1 < seq_starts.size(); ++s) {
    const int32_t first = seq_starts[s], end = seq_starts[s + 1];
    if (end <= first) continue;
    if (end - first <= kPagedDecodeMaxRun) {
      for (int32_t t = first; t < end; ++t) {
        plan.decode_token.push_back(t);
        plan.decode_seq.push_back(static_cast<int32_t>(s));
        plan.decode_max_keys = std::max(plan.decode_max_keys, keys_of(t));
      }
    } else {
      for (int32_t t = first; t < end; t += static_cast<int32_t>(tile)) {
        plan.tile_seq.push_back(static_cast<int32_t>(s));
        plan.tile_first.push_back(t);
        plan.tile_end.push_back(static_cast<int32_t>(std::min<int64_t>(end, t + tile)));
      }
    }
  }
  // Longest tiles first: a chunk's last tiles see the most keys.
  std::vector<size_t> order(plan.tile_seq.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return positions[static_cast<size_t>(plan.tile_end[a] - 1)] >
           positions[static_cast<size_t>(plan.tile_end[b] - 1)];
  });
  auto permute = [&](std::vector<int32_t>& v) {
    std::vector<int32_t> out(v.size());
    for (size_t i = 0; i < order.size(); ++i) out[i] = v[order[i]];
    v = std::move(out);
  };
  permute(plan.tile_seq);
  permute(plan.tile_first);
  permute(plan.tile_end);
  const int64_t n_decode = static_cast<int64_t>(plan.decode_token.size());
  plan.n_splits =
      n_decode > 0 ? decode_splits(n_decode, n_head, n_head_kv, plan.decode_max_keys, n_sms) : 1;
  return plan;
}

}  // namespace shardlm::cuda
