// Greedy and exact rejection-sampling verification of speculative proposals.
#include "runtime/engine/rejection_sampler.h"

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/core/status.h"

namespace shardlm {

SpecVerdict verify_greedy(std::span<const int32_t> proposals,
                          std::span<const int32_t> target_argmax) {
  if (target_argmax.size() != proposals.size() + 1) {
    fail(StatusCode::kInvalidArg, "verify_greedy: " + std::to_string(target_argmax.size()) +
                                      " target rows for " + std::to_string(proposals.size()) +
                                      " proposals (want proposals + 1)");
  }
  SpecVerdict v;
  while (static_cast<size_t>(v.n_accepted) < proposals.size() &&
         proposals[static_cast<size_t>(v.n_accepted)] ==
             target_argmax[static_cast<size_t>(v.n_accepted)]) {
    ++v.n_accepted;
  }
  v.next = target_argmax[static_cast<size_t>(v.n_accepted)];
  return v;
}

int32_t draw_from_weights(std::span<const float> weights, double u) {
  double total = 0;
  for (float w : weights) total += std::max(0.0f, w);
  if (!(total > 0)) return -1;
  const double target = u * total;
  double acc = 0;
  int32_t last = -1;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    acc += weights[i];
    last = static_cast<int32_t>(i);
    if (acc > target) return last;
  }
  return last;  // rounding: the last id with weight
}

SpecVerdict verify_sampled(std::span<const int32_t> proposals, std::span<const float> p,
                           int64_t n_vocab_p, std::span<const float> q, int64_t n_vocab_q,
                           const std::function<double()>& uniform) {
  const size_t k = proposals.size();
  if (n_vocab_p <= 0 || p.size() != (k + 1) * static_cast<size_t>(n_vocab_p)) {
    fail(StatusCode::kInvalidArg, "verify_sampled: target probabilities of " +
                                      std::to_string(p.size()) + " values for " +
                                      std::to_string(k) + " proposals and a vocabulary of " +
                                      std::to_string(n_vocab_p));
  }
  if (!q.empty() && (n_vocab_q <= 0 || q.size() != k * static_cast<size_t>(n_vocab_q))) {
    fail(StatusCode::kInvalidArg, "verify_sampled: draft probabilities of " +
                                      std::to_string(q.size()) + " values for " +
                                      std::to_string(k) + " proposals and a vocabulary of " +
                                      std::to_string(n_vocab_q));
  }
  const auto p_row = [&](size_t i) { return p.subspan(i * static_cast<size_t>(n_vocab_p), static_cast<size_t>(n_vocab_p)); };
  SpecVerdict v;
  std::vector<float> residual;
  for (size_t i = 0; i < k; ++i) {
    const int32_t x = proposals[i];
    const std::span<const float> pi = p_row(i);
    const float px = x >= 0 && x < n_vocab_p ? pi[static_cast<size_t>(x)] : 0.0f;
    float qx = 1.0f;  // one-hot proposal
    std::span<const float> qi;
    if (!q.empty()) {
      qi = q.subspan(i * static_cast<size_t>(n_vocab_q), static_cast<size_t>(n_vocab_q));
      qx = x >= 0 && x < n_vocab_q ? qi[static_cast<size_t>(x)] : 0.0f;
    }
    // Accept with probability min(1, px / qx): u < px / qx  <=>  u * qx < px.
    if (qx > 0 && uniform() * qx < px) {
      ++v.n_accepted;
      continue;
    }
    // Rejected: draw from normalize(max(0, p - q)).
    residual.assign(pi.begin(), pi.end());
    if (qi.empty()) {
      if (x >= 0 && x < n_vocab_p) residual[static_cast<size_t>(x)] = std::max(0.0f, px - 1.0f);
    } else {
      const size_t n = std::min(residual.size(), qi.size());
      for (size_t j = 0; j < n; ++j) residual[j] = std::max(0.0f, residual[j] - qi[j]);
    }
    v.next = draw_from_weights(residual, uniform());
    // p == q up to rounding leaves no residual mass; then p itself is the right law.
    if (v.next < 0) v.next = draw_from_weights(pi, uniform());
    return v;
  }
  v.next = draw_from_weights(p_row(k), uniform());
  return v;
}

}  // namespace shardlm
