// Sampler chain: penalties, temperature, top-k, top-p, min-p, seeded draw.
#include "runtime/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/core/status.h"

namespace shardlm {

namespace {

bool by_score_desc(const TokenScore& a, const TokenScore& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

[[noreturn]] void bad(const std::string& field, const std::string& why, double value) {
  fail(StatusCode::kInvalidArg,
       "sampling parameter " + field + " " + why + " (got " + std::to_string(value) + ")");
}

// Moves the top tokens whose mass reaches `p` to the front of `cand`, sorted descending. Grows the
// candidate count geometrically (nth_element is O(n) per step) so peaked distributions stay cheap.
void sort_front_until_mass(std::vector<TokenScore>& cand, float p) {
  const size_t n = cand.size();
  size_t m = std::min<size_t>(64, n);
  for (;;) {
    if (m < n) {
      std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(m), cand.end(),
                       by_score_desc);
    }
    double mass = 0;
    for (size_t i = 0; i < m; ++i) mass += cand[i].score;
    if (mass >= p || m == n) {
      std::sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(m), by_score_desc);
      return;
    }
    m = std::min(n, m * 8);
  }
}

}  // namespace

void validate_sampler_params(const SamplerParams& p) {
  if (!(p.temperature >= 0) || std::isinf(p.temperature))
    bad("temperature", "must be >= 0 and finite", p.temperature);
  if (p.top_k < 0) bad("top_k", "must be >= 0 (0 = off)", p.top_k);
  if (!(p.top_p > 0 && p.top_p <= 1)) bad("top_p", "must be in (0, 1] (1 = off)", p.top_p);
  if (!(p.min_p >= 0 && p.min_p <= 1)) bad("min_p", "must be in [0, 1] (0 = off)", p.min_p);
  if (!(p.repetition_penalty > 0) || std::isinf(p.repetition_penalty))
    bad("repetition_penalty", "must be > 0 and finite (1 = off)", p.repetition_penalty);
  if (std::isnan(p.presence_penalty) || std::isinf(p.presence_penalty))
    bad("presence_penalty", "must be finite (0 = off)", p.presence_penalty);
  if (std::isnan(p.frequency_penalty) || std::isinf(p.frequency_penalty))
    bad("frequency_penalty", "must be finite (0 = off)", p.frequency_penalty);
  if (p.penalty_last_n < -1) bad("penalty_last_n", "must be >= -1 (-1 = all)", p.penalty_last_n);
}

void apply_penalties(std::span<float> logits, std::span<const int32_t> history,
                     float repetition_penalty, float presence_penalty, float frequency_penalty) {
  if (history.empty()) return;
  if (repetition_penalty == 1.0f && presence_penalty == 0.0f && frequency_penalty == 0.0f) return;
  std::vector<int32_t> ids(history.begin(), history.end());
  std::sort(ids.begin(), ids.end());
  const int64_t n_vocab = static_cast<int64_t>(logits.size());
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    const int32_t id = ids[i];
    const float count = static_cast<float>(j - i);
    i = j;
    if (id < 0 || id >= n_vocab) continue;
    float& l = logits[static_cast<size_t>(id)];
    l = l > 0 ? l / repetition_penalty : l * repetition_penalty;
    l -= presence_penalty + frequency_penalty * count;
  }
}

void softmax_in_place(std::vector<TokenScore>& cand) {
  if (cand.empty()) return;
  float max_s = -INFINITY;
  for (const TokenScore& c : cand) max_s = std::max(max_s, c.score);
  double sum = 0;
  for (TokenScore& c : cand) {
    c.score = std::isinf(max_s) ? 1.0f : std::exp(c.score - max_s);
    sum += c.score;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (TokenScore& c : cand) c.score *= inv;
}

void keep_top_k(std::vector<TokenScore>& cand, int32_t k) {
  if (k <= 0 || static_cast<size_t>(k) >= cand.size()) {
    std::sort(cand.begin(), cand.end(), by_score_desc);
    return;
  }
  const auto kth = cand.begin() + (k - 1);
  std::nth_element(cand.begin(), kth, cand.end(), by_score_desc);
  const float v = kth->score;
  // Ties with the k-th score survive too (as transformers' TopKLogitsWarper keeps them).
  const auto end =
      std::partition(kth + 1, cand.end(), [v](const TokenScore& c) { return c.score >= v; });
  cand.erase(end, cand.end());
  std::sort(cand.begin(), cand.end(), by_score_desc);
}

void keep_top_p(std::vector<TokenScore>& cand, float p) {
  if (p >= 1.0f || cand.empty()) return;
  double mass = 0;
  size_t n = 0;
  while (n < cand.size()) {
    mass += cand[n].score;
    ++n;
    if (mass >= p) break;
  }
  cand.resize(std::max<size_t>(n, 1));
}

void keep_min_p(std::vector<TokenScore>& cand, float min_p) {
  if (min_p <= 0.0f || cand.empty()) return;
  float top = 0;
  for (const TokenScore& c : cand) top = std::max(top, c.score);
  const float threshold = min_p * top;
  cand.erase(std::remove_if(cand.begin(), cand.end(),
                            [threshold](const TokenScore& c) { return c.score < threshold; }),
             cand.end());
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
  validate_sampler_params(params_);
}

bool Sampler::has_penalties() const {
  return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
         params_.frequency_penalty != 0.0f;
}

double Sampler::next_uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::chain(std::span<float> logits, std::span<const int32_t> history) {
  if (logits.empty()) fail(StatusCode::kInvalidArg, "no logits to sample from");
  if (has_penalties()) {
    const size_t n = params_.penalty_last_n < 0
                         ? history.size()
                         : std::min(history.size(), static_cast<size_t>(params_.penalty_last_n));
    apply_penalties(logits, history.subspan(history.size() - n), params_.repetition_penalty,
                    params_.presence_penalty, params_.frequency_penalty);
  }
  if (greedy()) {  // first maximum = lowest id on ties
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  cand_.resize(logits.size());
  const float inv_t = 1.0f / params_.temperature;
  for (size_t i = 0; i < logits.size(); ++i) {
    cand_[i] = {static_cast<int32_t>(i), logits[i] * inv_t};
  }
  if (params_.top_k > 0) keep_top_k(cand_, params_.top_k);  // sorts what it keeps
  softmax_in_place(cand_);
  if (params_.top_p < 1.0f) {
    if (params_.top_k <= 0) sort_front_until_mass(cand_, params_.top_p);
    keep_top_p(cand_, params_.top_p);
  }
  keep_min_p(cand_, params_.min_p);
  return -1;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  const int32_t greedy_id = chain(logits, history);
  if (greedy_id >= 0) return greedy_id;
  double total = 0;
  for (const TokenScore& c : cand_) total += c.score;
  const double target = next_uniform() * total;
  double acc = 0;
  for (const TokenScore& c : cand_) {
    acc += c.score;
    if (acc > target) return c.id;
  }
  return cand_.back().id;
}

void Sampler::distribution(std::span<float> logits, std::span<const int32_t> history,
                           std::span<float> probs) {
  if (probs.size() != logits.size()) {
    fail(StatusCode::kInvalidArg, "sampler distribution: " + std::to_string(probs.size()) +
                                      " probabilities for " + std::to_string(logits.size()) +
                                      " logits");
  }
  std::fill(probs.begin(), probs.end(), 0.0f);
  const int32_t greedy_id = chain(logits, history);
  if (greedy_id >= 0) {
    probs[static_cast<size_t>(greedy_id)] = 1.0f;
    return;
  }
  double total = 0;
  for (const TokenScore& c : cand_) total += c.score;
  const double inv = 1.0 / total;
  for (const TokenScore& c : cand_) {
    probs[static_cast<size_t>(c.id)] = static_cast<float>(c.score * inv);
  }
}

}  // namespace shardlm
