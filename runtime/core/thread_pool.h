// A fixed-size pool of worker threads for data-parallel loops inside one rank (kernels split
// rows over it). The calling thread takes part, so a pool of size 1 runs everything inline.
// Not a task scheduler: one parallel_for at a time, called from the pool's owner thread only.
// Exceptions thrown by a chunk are captured and rethrown to the caller of parallel_for.
#pragma once

#include <condition_variable>
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
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint contiguous chunks covering [0, n) (at most size() chunks,
  // each at least `min_chunk` long except the last), blocks until all are done.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                    int64_t min_chunk = 1);

 private:
  void worker_loop(int index);
  void run_chunk(int chunk);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  int pending_ = 0;
  // The current job.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 0;
  int n_chunks_ = 0;
  std::exception_ptr error_;
};

}  // namespace shardlm
