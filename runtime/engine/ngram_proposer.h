// N-gram (prompt lookup) proposals for speculative decoding without a draft model: find the
// longest suffix of the context (max_n tokens down to min_n) that occurred earlier in it, and
// propose the tokens that followed its most recent earlier occurrence. Pays off when the output
// repeats the context (editing or quoting code, summaries, structured output). Pure function;
// O(context x max_n) per call. Not here: verification (rejection_sampler.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace shardlm {

// tokens [n]: the whole context, last token included. Returns at most k ids (empty: no match).
std::vector<int32_t> propose_ngram(std::span<const int32_t> tokens, int32_t min_n, int32_t max_n,
                                   int32_t k);

}  // namespace shardlm
