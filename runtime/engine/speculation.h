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
// N-gram proposals cost nothing to make, so they are not shrunk: while not paused, an n-gram
// sequence proposes up to k (default 8, against 4 for a draft model); only the verification's
// extra positions are paid, and SpecGate (below) keeps plain decoding where that loses.
// Not here: running models or sampling.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shardlm {

enum class SpeculationMode : int32_t {
  kOff = 0,
  kDraft = 1,  // a draft model (same tokenizer) proposes
  kNgram = 2,  // prompt lookup: tokens that followed the context's suffix earlier in it
};

struct SpeculationOptions {
  SpeculationMode mode = SpeculationMode::kOff;
  int32_t k = 4;          // most tokens proposed per sequence per step (default_speculation_k)
  bool adaptive = true;   // shrink k and pause on low acceptance (see above)
  int32_t ngram_min = 2;  // n-gram lookup: shortest and longest suffix matched
  int32_t ngram_max = 5;
  // Draft model: stop proposing once the draft's probability of its own proposal drops below
  // this (a likely rejection is not worth a draft step). 0 = always propose k.
  float draft_min_prob = 0.1f;
  // Speculate only where it measured faster (SpecGate below). Off in deterministic mode and
  // without `adaptive`, where which steps speculate must not depend on timing.
  bool only_when_faster = true;
};

// Throws Error(kInvalidArg) naming the field: k outside [1, 32], ngram_min < 1, ngram_max <
// ngram_min, draft_min_prob outside [0, 1).
void validate_speculation_options(const SpeculationOptions& o);

const char* speculation_mode_name(SpeculationMode mode);

// The k the apps and the C ABI use when none is given: 4 with a draft model (each proposed token
// costs a draft step), 8 with n-gram lookup (free proposals; on the demo target at TP 2, up to 8
// unshrunk proposals gave 1.47-1.52x on repeated code and 1.58-1.66x on code completion, against
// 1.31-1.32x and 1.29-1.49x for the shrinking controller at 4: docs/benchmarks.md).
int32_t default_speculation_k(SpeculationMode mode);

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

// Whether speculating pays on this engine, measured: the tokens per second of decode-only steps
// that verified proposals against those that did not, per class of batch size (1, 2, 3-4, 5-8,
// 9-16, 17+ sequences), since a verification's extra tokens cost more the more the step already
// computes. Speculation wins the first steps of a class (a few of each kind are measured), then
// whichever kind is faster runs, and the other is measured again now and then by a short run of
// its steps: plain steps every 32 steps while speculation is faster, the wait doubling (up to
// 256) each time speculation still wins by 1.2x or more (speculative steps are measured all the
// time, so speculation that stops paying is dropped once their average falls below plain's,
// whatever the wait); speculation after 16 steps while it is slower, the wait doubling (up to
// 512) each time it loses again. The first speculative step after plain ones is not measured (the
// draft catches up on the tokens it missed). Where the target's step is nearly free to widen (a
// model streamed from memory, a GPU) speculation keeps winning; where a k + 1-token step costs
// several one-token steps and the draft is not much cheaper than the target (a small model in
// cache), plain decoding runs.
class SpecGate {
 public:
  explicit SpecGate(bool enabled) : enabled_(enabled) {}
  // Whether this step may speculate; `batch`: the sequences it decodes.
  bool allow(int64_t batch);
  // After every step: whether it was decode-only (one new token per sequence, no prompt chunk),
  // whether any sequence verified proposals, the tokens it emitted and its wall time.
  void record(int64_t batch, bool decode_only, bool speculated, int64_t tokens, double seconds);
  // Tokens per second measured in `batch`'s class (0 before any step of that kind).
  double rate(int64_t batch, bool speculated) const;
  int64_t plain_chosen() const { return plain_chosen_; }  // steps allow() kept plain

 private:
  struct Kind {
    double rate = 0;  // moving average of tokens per second
    int32_t n = 0;    // steps measured
  };
  struct Class {
    Kind spec, plain;
    int32_t run_left = 0;     // steps left in a run of the kind not in favour
    bool run_spec = false;    // that run's kind
    int32_t since_run = 0;    // steps since the last such run
    int32_t spec_wait = 16;   // while plain is faster: steps between speculation runs
    int32_t plain_wait = 32;  // while speculation is faster: steps between plain runs
  };
  static size_t class_of(int64_t batch);
  bool enabled_;
  Class classes_[6];
  bool last_speculated_ = false;
  int64_t plain_chosen_ = 0;
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
  bool shrink_;  // propose about the expected accepted run (a draft); n-gram: always up to k
  SpecPrior* prior_;
  double average_ = 0.6;  // moving average of accepted / proposed
  int32_t paused_ = 0;    // steps left without speculation
  int32_t pause_ = 0;     // length of the next pause: doubles while probes keep failing
  bool probing_ = false;  // the last proposal was a probe after a pause
};

}  // namespace shardlm
