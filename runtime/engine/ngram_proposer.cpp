// Prompt-lookup proposals: longest earlier match of the context's suffix.
#include "runtime/engine/ngram_proposer.h"

#include <algorithm>
#include <cstddef>

namespace shardlm {

std::vector<int32_t> propose_ngram(std::span<const int32_t> tokens, int32_t min_n, int32_t max_n,
                                   int32_t k) {
  const ptrdiff_t len = static_cast<ptrdiff_t>(tokens.size());
  if (k <= 0 || min_n <= 0 || max_n < min_n) return {};
  for (ptrdiff_t n = std::min<ptrdiff_t>(max_n, len - 1); n >= min_n; --n) {
    const std::span<const int32_t> suffix = tokens.subspan(static_cast<size_t>(len - n));
    // Most recent earlier occurrence: start s with s + n <= len - 1 (at least one token after).
    for (ptrdiff_t s = len - n - 1; s >= 0; --s) {
      if (!std::equal(suffix.begin(), suffix.end(), tokens.begin() + s)) continue;
      const ptrdiff_t from = s + n;
      const ptrdiff_t to = std::min<ptrdiff_t>(len, from + k);
      return std::vector<int32_t>(tokens.begin() + from, tokens.begin() + to);
    }
  }
  return {};
}

}  // namespace shardlm
