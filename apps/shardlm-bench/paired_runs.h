// shardlm-bench --baseline: one prompt + greedy generation on each of two engines (two packs of
// the same model) with their steps interleaved: the prefill of one, the prefill of the other,
// then one decode step of each in turn. On a shared machine whose speed drifts within seconds,
// each pack's step then runs next to the other's, and the ratio of their times sees the same
// machine. Each side's time is counted only while it holds the turn. Not a load generator: the
// two never run at the same time.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/engine/engine.h"

namespace shardlm::bench {

struct SideTimes {
  double prefill_s = 0;      // its turn until the first generated token
  double decode_s = 0;       // its turns for every later token
  int64_t decode_steps = 0;  // tokens after the first
};

struct PairTimes {
  SideTimes a, b;
};

// Both engines generate `gen` tokens (greedy, eos ignored) after `prompt`; `b_first` gives the
// first turn to b. Errors of either side are rethrown after both have stopped.
PairTimes run_interleaved(Engine& a, Engine& b, const std::vector<int32_t>& prompt, int64_t gen,
                          bool b_first);

}  // namespace shardlm::bench
