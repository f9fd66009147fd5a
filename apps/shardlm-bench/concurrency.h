// shardlm-bench --concurrency N: N sequences through the step engine's scheduler at once (random
// prompts of --prompt-len tokens, the first --shared-prefix of them common to all), against one
// sequence alone in the same run. Reports aggregate and per-sequence decode tok/s, the ratio to
// the single sequence, TTFT p50/p99, the most KV blocks held, and the prefix-cache hit rate; with
// a shared prefix also the cold and warm TTFT of one request (the second finds the prefix
// cached). Not the single-sequence roofline mode (main.cpp) and not a correctness test.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/common/compute_flags.h"

namespace shardlm::bench {

struct ConcurrencyOptions {
  std::string pack_dir, backend = "cpu", kv_dtype = "bf16";
  int tp = 0, threads = 0, reps = 3, warmup = 1;
  int64_t concurrency = 8, prompt_len = 128, gen = 64, shared_prefix = 0, ubatch = 0;
  int64_t block_size = 16;
  uint64_t seed = 1;
  bool json = false, deterministic = false;
  apps::ComputeFlags compute;
  // Ranks as processes (started by mpirun): rank 0 measures, the others serve steps; the
  // one-sequence A/B column is then not measured (that path runs in-process only).
  std::shared_ptr<Communicator> process_comm;
  std::vector<int> devices;  // device backends: rank r on devices[r % size] (empty: all)
};

// Runs the benchmark and prints a table (or one JSON object). Throws shardlm::Error on bad
// options or a failing engine.
void run_concurrency(const ConcurrencyOptions& options);

}  // namespace shardlm::bench
