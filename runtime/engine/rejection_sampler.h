// Verification of speculative proposals: which of a sequence's K proposed tokens the target model
// accepts, and the token that follows them. Two rules:
//   - greedy: accept while the proposal equals the target's argmax; the next token is the
//     target's argmax at the first mismatch (or after the last proposal): exactly the tokens of
//     plain greedy decoding.
//   - exact rejection sampling (Leviathan et al. 2023, Chen et al. 2023): accept proposal x_i with
//     probability min(1, p_i(x_i) / q_i(x_i)); at the first rejection draw the next token from
//     normalize(max(0, p_i - q_i)); when all K are accepted draw a bonus token from p_K. The
//     emitted tokens are distributed exactly as tokens drawn from p one at a time. A proposal
//     made without a distribution (n-gram lookup) has q one-hot at the proposed token.
// Pure functions over probability rows; the uniforms come from the caller (the sequence's own
// sampler, so results do not depend on the batch). Not here: computing p or q (sampler.h).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

namespace shardlm {

struct SpecVerdict {
  int32_t n_accepted = 0;  // leading proposals kept
  int32_t next = -1;       // the token after them (correction or bonus)
};

// proposals [k]; target_argmax [k + 1]: the target's greedy id at each verified position.
SpecVerdict verify_greedy(std::span<const int32_t> proposals,
                          std::span<const int32_t> target_argmax);

// proposals [k]; p [k + 1, n_vocab_p] target probabilities; q [k, n_vocab_q] draft
// probabilities (ids >= n_vocab_q have q = 0), or empty: each proposal one-hot.
// uniform() returns a double in [0, 1).
SpecVerdict verify_sampled(std::span<const int32_t> proposals, std::span<const float> p,
                           int64_t n_vocab_p, std::span<const float> q, int64_t n_vocab_q,
                           const std::function<double()>& uniform);

// Draws an id with probability weights[id] / sum(weights) given u in [0, 1). All-zero weights:
// -1.   weights [n]
int32_t draw_from_weights(std::span<const float> weights, double u);

}  // namespace shardlm
