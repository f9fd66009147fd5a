// plan_attention: the decode/prefill choice and the split-K factor.
#include "kernels/cuda/attention_plan.h"

#include <algorithm>

#include "kernels/cuda/cuda_ops.h"

namespace shardlm::cuda {

AttentionPlan plan_attention(int64_t n_tokens, int64_t n_head, int64_t n_head_kv, int64_t max_keys,
                             int n_sms) {
  AttentionPlan plan;
  plan.decode = n_tokens >= 1 && n_tokens <= kDecodeMaxTokens;
  if (!plan.decode) return plan;
  constexpr int64_t kMaxGroup = 8;  // heads per decode block (attention_decode.cu)
  constexpr int64_t kMinKeysPerSplit = 64;
  const int64_t group = n_head_kv > 0 ? std::max<int64_t>(1, n_head / n_head_kv) : 1;
  const int64_t blocks =
      n_tokens * std::max<int64_t>(1, n_head_kv) * ((group + kMaxGroup - 1) / kMaxGroup);
  const int64_t want = std::max<int64_t>(1, (2 * std::max(1, n_sms) + blocks - 1) / blocks);
  const int64_t by_keys = std::max<int64_t>(1, max_keys / kMinKeysPerSplit);
  plan.n_splits = static_cast<int>(std::min({want, by_keys, int64_t{kMaxDecodeSplits}}));
  return plan;
}

}  // namespace shardlm::cuda
