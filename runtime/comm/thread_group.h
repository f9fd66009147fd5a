// In-process tensor parallelism: a ThreadGroup is the shared state of N ranks that are threads
// of one process (shared-memory collectives), and RankThreads runs one function on N persistent
// rank threads. Lets TP = 2/4 run and be tested on one machine without MPI or GPUs.
// The group is created by the caller and handed to each rank's communicator: no global state.
// When one rank fails, abort() wakes every rank blocked in a collective with Error(kComm), so a
// failure never deadlocks the others.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/comm/communicator.h"

namespace shardlm {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size);
  int size() const { return size_; }

  // The communicator of `rank`; it refers to this group, which must outlive it.
  std::unique_ptr<Communicator> communicator(int rank);

  // Makes every current and future collective of this group throw Error(kComm) with `why`.
  void abort(const std::string& why);
  bool aborted() const;

  // Internals used by the threads communicator.
  struct Slot {
    const void* ptr = nullptr;
    size_t bytes = 0;
  };
  void publish(int rank, const void* ptr, size_t bytes) {
    slots_[static_cast<size_t>(rank)] = {ptr, bytes};
  }
  const Slot& slot(int rank) const { return slots_[static_cast<size_t>(rank)]; }
  void wait_all();  // barrier; throws Error(kComm) when aborted

 private:
  int size_;
  std::vector<Slot> slots_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  // Lock-free copies of generation_ and aborted_ for the spin before sleeping in wait_all().
  static constexpr int kSpinMicros = 50;
  std::atomic<uint64_t> published_generation_{0};
  std::atomic<bool> aborted_flag_{false};
  std::string abort_reason_;
};

// N ranks run side by side: run(fn) calls fn(rank) for every rank and returns when all are done.
// Each rank is a persistent thread, except that with `caller_runs_rank0` rank 0 runs on the
// thread that calls run() (only ranks 1..N-1 get threads). That saves a wake-up and a hand-back
// per call, which counts when a step takes a fraction of a millisecond (a TP 1 draft model next
// to its target); it is for ranks whose state is not bound to a thread (the CPU backend; a CUDA
// rank keeps its device current on its own thread). If any rank throws, the group (when given) is
// aborted so the others stop, and the first error (preferring a rank's own error over the kComm
// "aborted" ones it caused) is rethrown to the caller of run(). No exception escapes a thread.
class RankThreads {
 public:
  RankThreads(int n_ranks, ThreadGroup* group, bool caller_runs_rank0 = false);
  ~RankThreads();
  RankThreads(const RankThreads&) = delete;
  RankThreads& operator=(const RankThreads&) = delete;

  int size() const { return n_ranks_; }
  bool caller_runs_rank0() const { return caller_runs_rank0_; }
  void run(const std::function<void(int)>& fn);

 private:
  void loop(int rank);
  // fn(rank), its exception captured (and the group aborted) rather than thrown.
  std::exception_ptr call(const std::function<void(int)>& fn, int rank);

  ThreadGroup* group_;
  int n_ranks_;
  bool caller_runs_rank0_;
  std::vector<std::thread> threads_;  // ranks caller_runs_rank0_ .. n_ranks_ - 1
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int)>* fn_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::vector<std::exception_ptr> errors_;  // per rank, written under mu_ by the rank threads
};

}  // namespace shardlm
