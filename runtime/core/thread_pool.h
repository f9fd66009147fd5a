// A fixed team of worker threads for data-parallel loops inside one rank (kernels split rows,
// heads or tiles over it). Threads are started once, in the constructor; nothing is created per
// op or per token. The calling thread takes part as thread 0, so a pool of size 1 runs
// everything inline. Idle workers spin briefly (a decode step issues ops back to back, a few
// microseconds apart) and then sleep on a futex (std::atomic::wait), so an idle pool costs no
// CPU. Workers may be pinned to given CPUs (cpu_affinity.h): a worker woken from its sleep then
// starts on its own core instead of wherever the scheduler puts it, possibly beside the thread
// that woke it. Not a task scheduler: one job at a time, submitted from the pool's owner thread
// only.
// Exceptions thrown by a job are captured and the first one is rethrown to the submitter.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace shardlm {

class ThreadPool {
 public:
  // `n_threads` counts the caller: n_threads - 1 workers are started. Values < 1 mean 1.
  // Worker i (1-based) is pinned to worker_cpus[i - 1] where that exists (the caller never is);
  // a CPU the OS refuses leaves its worker unpinned.
  explicit ThreadPool(int n_threads, const std::vector<int>& worker_cpus = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // The CPU each worker is pinned to (index i - 1 for worker i), -1 where it is not.
  const std::vector<int>& worker_cpus() const { return worker_cpus_; }

  // Calls fn(thread, n_threads) once on each of the first `n_threads` team members (0 = the
  // caller; n_threads is clamped to [1, size()]) and blocks until all have returned.
  void run(int n_threads, const std::function<void(int thread, int n_threads)>& fn);

  // Calls fn(begin, end) on disjoint contiguous chunks covering [0, n) (at most size() chunks,
  // each at least `min_chunk` long except the last), blocks until all are done.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                    int64_t min_chunk = 1);

 private:
  void worker_loop(int index);
  void run_member(int index);

  std::vector<std::thread> workers_;
  std::vector<int> worker_cpus_;
  std::atomic<uint64_t> generation_{0};  // bumped once per job; workers wait on it
  std::atomic<int> pending_{0};          // workers still inside the current job
  std::atomic<bool> stop_{false};
  // The current job (written before generation_ is bumped, read after it is seen).
  const std::function<void(int, int)>* job_ = nullptr;
  int job_threads_ = 0;
  std::mutex error_mu_;
  std::exception_ptr error_;
};

}  // namespace shardlm
