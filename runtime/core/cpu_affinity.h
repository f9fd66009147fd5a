// Where the thread pool's workers run: the CPUs this process may use, ordered one per physical
// core first; which of them the workers of one rank's pool take; pinning a thread to one CPU.
// Linux only (elsewhere nothing is known and nothing is pinned). Not the pool itself
// (thread_pool.h) and not the setting that turns pinning on (the CPU backend's pin_threads).
#pragma once

#include <thread>
#include <vector>

namespace shardlm {

// The CPUs in this process's affinity mask: the lowest-numbered CPU of every physical core first
// (cores in CPU order), then each core's further hardware threads, so that n threads taken from
// the front land on n cores before two share one. Empty when the mask cannot be read.
std::vector<int> allowed_cpus_by_core();

// The CPUs for the workers of a pool of `n_threads` threads (the caller counts as thread 0) of
// rank `rank` of `n_ranks` ranks that each run `n_threads` threads: rank r takes allowed[r *
// n_threads, (r + 1) * n_threads) and leaves the first of them to the caller (it is not pinned:
// it is the application's thread), so worker i (1-based) gets allowed[r * n_threads + i]. Only
// when the ranks' threads together take every CPU in `allowed` (the default thread count): an
// engine given fewer threads than the process may use, e.g. one of several on a machine, stays
// where the scheduler puts it. Empty (nothing pinned) then, for a single thread, and when the
// slice does not fit.
std::vector<int> worker_cpus_for_rank(const std::vector<int>& allowed, int rank, int n_ranks,
                                      int n_threads);

// Pins `thread` to `cpu`; false when the OS refuses (or off Linux).
bool pin_thread(std::thread& thread, int cpu);

// The CPUs the calling thread may run on, ascending (empty when unknown).
std::vector<int> current_thread_cpus();

}  // namespace shardlm
