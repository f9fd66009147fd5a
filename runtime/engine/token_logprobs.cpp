// token_logprob: one log-sum-exp in double over the row, then a partial sort for the top ids.
#include "runtime/engine/token_logprobs.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace shardlm {

TokenLogprob token_logprob(std::span<const float> logits, int32_t token, int32_t top_n) {
  TokenLogprob out;
  out.token = token;
  if (logits.empty()) return out;
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - mx);
  const double lse = static_cast<double>(mx) + std::log(sum);
  out.logprob = static_cast<float>(static_cast<double>(logits[static_cast<size_t>(token)]) - lse);
  const size_t n =
      std::min<size_t>(static_cast<size_t>(std::clamp(top_n, 0, kMaxTopLogprobs)), logits.size());
  if (n == 0) return out;
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(n), ids.end(),
                    [&](int32_t a, int32_t b) {
                      const float la = logits[static_cast<size_t>(a)];
                      const float lb = logits[static_cast<size_t>(b)];
                      return la > lb || (la == lb && a < b);
                    });
  for (size_t i = 0; i < n; ++i) {
    out.top.emplace_back(
        ids[i], static_cast<float>(static_cast<double>(logits[static_cast<size_t>(ids[i])]) - lse));
  }
  return out;
}

}  // namespace shardlm
