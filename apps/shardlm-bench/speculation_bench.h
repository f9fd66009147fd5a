// shardlm-bench --spec-prompts FILE with --draft PACK or --spec-ngram: decode speed of the target
// alone against speculative decoding, on the prompts of FILE (JSON Lines: one JSON string or
// {"prompt": "..."} per line, tokenized with the pack's tokenizer), interleaved A/B in the same
// run: every rep runs every prompt plainly and then every prompt speculatively, --gen tokens each
// (eos ignored), each pass on one step engine, one prompt at a time (so speculation carries what
// it learned about the proposer from prompt to prompt, as in a server or chat). Reports the
// median decode tok/s of both, their ratio, the acceptance rate and the tokens emitted per
// verification. Greedy by default (speculative output equals plain output;
// checked), or --temperature T with the same seeds. Not a correctness test.
#pragma once

#include <cstdint>
#include <string>

#include "apps/common/spec_flags.h"
#include "runtime/engine/engine.h"

namespace shardlm::bench {

struct SpeculationBenchOptions {
  std::string prompts_path;
  apps::SpecFlags spec;
  int64_t gen = 128;
  int reps = 3;
  float temperature = 0;
  bool json = false;
};

// `target` and `draft` (null for n-gram) need paged KV pools.
void run_speculation_bench(Engine& target, Engine* draft, const SpeculationBenchOptions& options);

}  // namespace shardlm::bench
