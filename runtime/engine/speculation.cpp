// Speculation settings check and the adaptive-k controller.
#include "runtime/engine/speculation.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/core/status.h"

namespace shardlm {

namespace {
constexpr double kSmoothing = 0.3;       // weight of the newest step in the average
constexpr double kPauseBelow = 0.2;      // average acceptance that pauses speculation
constexpr int32_t kPauseSteps = 16;      // first pause: steps without speculation before a probe
constexpr int32_t kMaxPauseSteps = 512;  // pauses double up to this while probes fail
constexpr double kAfterPause = 0.3;      // average assumed when probing again
// SpecGate
constexpr int32_t kGateWarm = 3;            // steps of each kind measured before choosing
constexpr int32_t kGateRun = 4;             // length of a run of the kind not in favour
constexpr int32_t kGatePlainEvery = 32;     // while speculation is faster: a plain run this often,
constexpr int32_t kGateMaxPlainWait = 256;  // the wait doubling up to this while it wins clearly
constexpr double kGateClearWin = 1.2;       // by at least this factor
constexpr int32_t kGateFirstWait = 16;      // while it is slower: first wait for a speculation run
constexpr int32_t kGateMaxWait = 512;
}  // namespace

size_t SpecGate::class_of(int64_t batch) {
  size_t c = 0;
  for (int64_t limit = 1; c < 5 && batch > limit; limit *= 2) ++c;
  return c;
}

bool SpecGate::allow(int64_t batch) {
  if (!enabled_) return true;
  Class& c = classes_[class_of(batch)];
  bool speculate;
  if (c.run_left > 0) {
    --c.run_left;
    speculate = c.run_spec;
  } else if (c.spec.n < kGateWarm) {
    speculate = true;
  } else if (c.plain.n < kGateWarm) {
    speculate = false;
  } else {
    speculate = c.spec.rate >= c.plain.rate;
    if (speculate) {
      c.spec_wait = kGateFirstWait;
    } else {
      c.plain_wait = kGatePlainEvery;
    }
    if (++c.since_run >= (speculate ? c.plain_wait : c.spec_wait)) {
      c.since_run = 0;
      if (!speculate) {
        c.spec_wait = std::min(kGateMaxWait, 2 * c.spec_wait);
      } else if (c.spec.rate >= kGateClearWin * c.plain.rate) {
        c.plain_wait = std::min(kGateMaxPlainWait, 2 * c.plain_wait);
      } else {
        c.plain_wait = kGatePlainEvery;
      }
      // A speculation run's first step only catches the draft up: one more step.
      c.run_spec = !speculate;
      c.run_left = kGateRun + (c.run_spec ? 1 : 0) - 1;
      speculate = c.run_spec;
    }
  }
  if (!speculate) ++plain_chosen_;
  return speculate;
}

void SpecGate::record(int64_t batch, bool decode_only, bool speculated, int64_t tokens,
                      double seconds) {
  const bool after_plain = speculated && !last_speculated_;
  last_speculated_ = speculated;
  if (!enabled_ || !decode_only || after_plain || tokens <= 0 || !(seconds > 0)) return;
  Kind& k = speculated ? classes_[class_of(batch)].spec : classes_[class_of(batch)].plain;
  const double r = double(tokens) / seconds;
  k.rate = k.n == 0 ? r : (1 - kSmoothing) * k.rate + kSmoothing * r;
  ++k.n;
}

double SpecGate::rate(int64_t batch, bool speculated) const {
  const Class& c = classes_[class_of(batch)];
  return speculated ? c.spec.rate : c.plain.rate;
}

int32_t default_speculation_k(SpeculationMode mode) {
  return mode == SpeculationMode::kNgram ? 8 : 4;
}

void validate_speculation_options(const SpeculationOptions& o) {
  if (o.k < 1 || o.k > 32) {
    fail(StatusCode::kInvalidArg,
         "speculation k must be in [1, 32] (got " + std::to_string(o.k) + ")");
  }
  if (o.ngram_min < 1 || o.ngram_max < o.ngram_min) {
    fail(StatusCode::kInvalidArg, "n-gram speculation needs 1 <= ngram_min <= ngram_max (got " +
                                      std::to_string(o.ngram_min) + " and " +
                                      std::to_string(o.ngram_max) + ")");
  }
  if (!(o.draft_min_prob >= 0 && o.draft_min_prob < 1)) {
    fail(StatusCode::kInvalidArg,
         "draft_min_prob must be in [0, 1) (got " + std::to_string(o.draft_min_prob) + ")");
  }
}

const char* speculation_mode_name(SpeculationMode mode) {
  switch (mode) {
    case SpeculationMode::kOff:
      return "off";
    case SpeculationMode::kDraft:
      return "draft";
    case SpeculationMode::kNgram:
      return "ngram";
  }
  return "?";
}

void SpecPrior::observe(int32_t proposed, int32_t accepted) {
  if (proposed <= 0) return;
  average_ = (1 - kSmoothing) * average_ + kSmoothing * double(accepted) / double(proposed);
}

SpecController::SpecController(const SpeculationOptions& o, SpecPrior* prior)
    : k_max_(o.k),
      adaptive_(o.adaptive),
      shrink_(o.mode != SpeculationMode::kNgram),
      prior_(prior) {
  if (!prior_ || !adaptive_) return;
  average_ = prior_->average();
  // Proposals have been failing: wait as long as the engine's last failed probe did before
  // trying this sequence (its probe then doubles the pause for the sequences after it).
  if (average_ < kPauseBelow && prior_->pause() > 0) {
    pause_ = prior_->pause();
    paused_ = pause_;
  }
}

int32_t SpecController::next_k() {
  if (!adaptive_) return k_max_;
  if (paused_ > 0) {
    if (--paused_ > 0) return 0;
    average_ = kAfterPause;
    probing_ = true;
    return 1;  // the probe
  }
  if (!shrink_) return k_max_;
  const double a = std::min(average_, 0.97);
  const double expected = a / (1.0 - a);  // mean accepted run at this rate
  return static_cast<int32_t>(std::clamp<double>(std::ceil(expected), 1, k_max_));
}

void SpecController::update(int32_t proposed, int32_t accepted) {
  if (proposed <= 0) return;
  if (prior_) prior_->observe(proposed, accepted);
  if (probing_) {
    probing_ = false;
    if (accepted == 0) {  // the probe failed: pause again, twice as long
      pause_ = std::min(kMaxPauseSteps, std::max(kPauseSteps, 2 * pause_));
      paused_ = pause_;
      if (prior_ && adaptive_) prior_->paused_for(pause_);
      return;
    }
  }
  average_ = (1 - kSmoothing) * average_ + kSmoothing * double(accepted) / double(proposed);
  if (adaptive_ && average_ < kPauseBelow) {
    pause_ = pause_ > 0 && accepted == 0 ? pause_ : kPauseSteps;
    paused_ = pause_;
    if (prior_) prior_->paused_for(pause_);
  } else if (accepted > 0) {
    pause_ = 0;  // proposals pass again: the next pause starts short
    if (prior_) prior_->passed();
  }
}

}  // namespace shardlm
