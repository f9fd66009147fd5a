// Speculative decoding settings and the per-sequence controller that decides how many tokens to
// propose. A proposer (a draft model: draft_proposer.h; or n-gram lookup: ngram_proposer.h)
// suggests up to k tokens after a sequence's last one; the target scores the last token and all
// k proposals in one step (k + 1 positions) and the verifier (rejection_sampler.h) keeps a prefix
// of them plus one token of its own, so every step still makes at least one token.
// Adaptive k: the controller keeps a moving average of the acceptance rate and proposes about
// as many tokens as are expected to pass (alpha / (1 - alpha), at least 1, at most k); when
// almost nothing passes it pauses speculation for that sequence and probes again later with one
// token; each failed probe doubles the pause (16 steps up to 512), so a poor proposer costs
// little. What one step engine learns carries over to its next sequences (SpecPrior): a new
// sequence starts from the acceptance seen so far, and while proposals keep failing it starts
// paused for as long as the last failed probe's pause, so a poor draft is not tried again by
// every request (each try costs the draft a prefill of the whole context).
// Not here: running models or sampling.
#pragma once

#include <cstdint>

namespace shardlm {

enum class SpeculationMode : int32_t {
  kOff = 0,
  kDraft = 1,  // a draft model (same tokenizer) proposes
  kNgram = 2,  // prompt lookup: tokens that followed the context's suffix earlier in it
};

struct SpeculationOptions {
  SpeculationMode mode = SpeculationMode::kOff;
  int32_t k = 4;          // most tokens proposed per sequence per step
  bool adaptive = true;   // shrink k and pause on low acceptance (see above)
  int32_t ngram_min = 2;  // n-gram lookup: shortest and longest suffix matched
  int32_t ngram_max = 5;
  // Draft model: stop proposing once the draft's probability of its own proposal drops below
  // this (a likely rejection is not worth a draft step). 0 = always propose k.
  float draft_min_prob = 0.1f;
};

// Throws Error(kInvalidArg) naming the field: k outside [1, 32], ngram_min < 1, ngram_max <
// ngram_min, draft_min_prob outside [0, 1).
void validate_speculation_options(const SpeculationOptions& o);

const char* speculation_mode_name(SpeculationMode mode);

// What a step engine learned about its proposer from all its sequences so far: the moving average
// of acceptance over every verification, and the pause the latest failed probe started (0 once
// proposals pass again). Owned by the step engine; its sequences' controllers update it.
class SpecPrior {
 public:
  double average() const { return average_; }
  int32_t pause() const { return pause_; }
  void observe(int32_t proposed, int32_t accepted);
  void paused_for(int32_t steps) { pause_ = steps; }
  void passed() { pause_ = 0; }

 private:
  double average_ = 0.6;  // before any verification: assume proposals mostly pass
  int32_t pause_ = 0;
};

// One sequence's adaptive k.
class SpecController {
 public:
  // `prior`: the engine's experience (null: none); it must outlive the controller.
  explicit SpecController(const SpeculationOptions& o, SpecPrior* prior = nullptr);
  // Tokens to propose this step (0: speculation paused for this step).
  int32_t next_k();
  // After verification: `proposed` tokens were offered, `accepted` of them kept.
  void update(int32_t proposed, int32_t accepted);
  double acceptance_average() const { return average_; }

 private:
  int32_t k_max_;
  bool adaptive_;
  SpecPrior* prior_;
  double average_ = 0.6;  // moving average of accepted / proposed
  int32_t paused_ = 0;    // steps left without speculation
  int32_t pause_ = 0;     // length of the next pause: doubles while probes keep failing
  bool probing_ = false;  // the last proposal was a probe after a pause
};

}  // namespace shardlm
