// All-reduce latency and bandwidth of the communicator a run uses: the MPI communicator of ranks
// as processes (every rank calls it at once) or, in one process, a ThreadGroup of tp threads.
// The sizes are the model's: one token's activation row (n_embd f32: the decode all-reduce) and a
// prefill chunk's. Not a test; medians of `reps` calls after warm-up.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/comm/communicator.h"

namespace shardlm::bench {

struct AllReduceTime {
  int64_t bytes = 0;
  double median_us = 0;
  double gbs = 0;  // bytes / median time (the algorithm bandwidth)
};

// Collective: every rank of `comm` calls it with the same arguments.   n floats
AllReduceTime time_all_reduce(Communicator& comm, int64_t n, int reps);
// `tp` threads of one process on the threads communicator.
AllReduceTime time_threads_all_reduce(int tp, int64_t n, int reps);

// "16.0 KiB 12.3 us" / "2.0 MiB 410.2 us = 5.10 GB/s"
std::string describe(const AllReduceTime& t);

}  // namespace shardlm::bench
