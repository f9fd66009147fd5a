// The sampler chain: turns one position's logits into the next token id. Steps, in the order
// Hugging Face transformers applies them (so a pack's generation_config.json means the same):
//   1. penalties over the recent tokens: repetition (CTRL-style: positive logits divided,
//      negative multiplied), presence (- once per seen id) and frequency (- per occurrence)
//   2. temperature (0 = greedy: the argmax after penalties, lowest id on ties; nothing below runs)
//   3. top-k: keep the k highest logits (ties with the k-th are kept)
//   4. top-p: keep the smallest prefix of the sorted distribution whose mass reaches p
//   5. min-p: keep tokens whose probability is at least min_p times the highest one
//   6. draw from the renormalized survivors with a seeded mt19937_64 (a uniform double from its
//      top 53 bits, so the ids do not depend on the C++ library's distributions)
// Same seed, same logits and same history give the same ids. Not here: stop conditions and
// text (generation.h), logits computation (engine.h).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace shardlm {

struct SamplerParams {
  float temperature = 1.0f;         // 0 = greedy
  int32_t top_k = 0;                // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off
  float presence_penalty = 0.0f;    // 0 = off
  float frequency_penalty = 0.0f;   // 0 = off
  int32_t penalty_last_n = -1;      // recent tokens the penalties look at; -1 = all given
  uint64_t seed = 0;
};

// Throws Error(kInvalidArg) naming the field: temperature < 0, top_k < 0, top_p outside (0, 1],
// min_p outside [0, 1], repetition_penalty <= 0, penalty_last_n < -1, or any NaN.
void validate_sampler_params(const SamplerParams& p);

// A token and its score during the chain (a logit, later a probability).
struct TokenScore {
  int32_t id;
  float score;
};

// ---- The steps, exposed for tests. `cand` is sorted by score descending unless noted. ----

// Step 1 in place. logits [n_vocab]; history: the ids already in the context (any order).
void apply_penalties(std::span<float> logits, std::span<const int32_t> history,
                     float repetition_penalty, float presence_penalty, float frequency_penalty);
// Softmax of the candidates' scores (logits) in place; the result sums to 1.
void softmax_in_place(std::vector<TokenScore>& cand);
// Keeps the k highest (and ties with the k-th). Sorts `cand` descending. k <= 0: no-op (sorts).
void keep_top_k(std::vector<TokenScore>& cand, int32_t k);
// cand: probabilities, sorted descending at least up to where the running mass reaches p.
// Keeps the shortest such prefix (at least one token).
void keep_top_p(std::vector<TokenScore>& cand, float p);
// cand: probabilities sorted descending. Keeps those >= min_p * the first (at least 1).
void keep_min_p(std::vector<TokenScore>& cand, float min_p);

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);  // validates

  const SamplerParams& params() const { return params_; }
  bool greedy() const { return params_.temperature == 0.0f; }
  bool has_penalties() const;
  // False when the argmax of the raw logits is the answer (greedy, no penalties): the engine can
  // then reduce across ranks without gathering the logits.
  bool needs_logits() const { return !greedy() || has_penalties(); }

  // Runs the chain on `logits` (modified) and returns the chosen id. `history` is the whole
  // context; the penalties look at its last penalty_last_n ids.   logits [n_vocab]
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);
  // The distribution sample() draws from, dense: probs[id] after the whole chain (0 for the
  // tokens it filters out; one-hot at the argmax when greedy). Uses no randomness.
  // logits [n_vocab] (modified), probs [n_vocab]
  void distribution(std::span<float> logits, std::span<const int32_t> history,
                    std::span<float> probs);

  // A uniform double in [0, 1) from the generator (used by sample()).
  double next_uniform();

 private:
  // Steps 1-5: returns the greedy id, or -1 with the survivors' probabilities in cand_.
  int32_t chain(std::span<float> logits, std::span<const int32_t> history);

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<TokenScore> cand_;  // reused between calls
};

}  // namespace shardlm
