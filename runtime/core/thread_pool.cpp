// ThreadPool: a generation counter wakes the team; a pending counter reports completion. Both
// are spun on for a short while and then waited on with std::atomic::wait (a futex on Linux).
#include "runtime/core/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "runtime/core/cpu_affinity.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SHARDLM_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define SHARDLM_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define SHARDLM_CPU_RELAX() ((void)0)
#endif

namespace shardlm {

namespace {

// How long an idle thread polls before sleeping. Ops of one decode step follow each other within
// microseconds; a futex wake-up costs tens of microseconds on a busy machine. While polling,
// a thread yields its core now and then so that an oversubscribed machine still makes progress.
constexpr auto kSpin = std::chrono::microseconds(50);

// Spins until `value` differs from `old` (returns the new value) or the spin budget runs out
// (returns `old`).
template <class T>
T spin_while_equal(const std::atomic<T>& value, T old) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    const T now = value.load(std::memory_order_acquire);
    if (now != old) return now;
    SHARDLM_CPU_RELAX();
    if ((i & 63) == 63) {
      if (std::chrono::steady_clock::now() > deadline) return old;
      std::this_thread::yield();
    }
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads, const std::vector<int>& worker_cpus) {
  const int n_workers = std::max(1, n_threads) - 1;
  workers_.reserve(static_cast<size_t>(n_workers));
  worker_cpus_.assign(static_cast<size_t>(n_workers), -1);
  for (int i = 0; i < n_workers; ++i) {
    workers_.emplace_back([this, i] { worker_loop(i + 1); });
    if (static_cast<size_t>(i) < worker_cpus.size() &&
        pin_thread(workers_.back(), worker_cpus[i])) {
      worker_cpus_[static_cast<size_t>(i)] = worker_cpus[i];
    }
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_member(int index) {
  if (index >= job_threads_) return;
  try {
    (*job_)(index, job_threads_);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = spin_while_equal(generation_, seen);
    while (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    run_member(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::run(int n_threads, const std::function<void(int, int)>& fn) {
  n_threads = std::clamp(n_threads, 1, size());
  if (n_threads == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  job_threads_ = n_threads;
  error_ = nullptr;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  run_member(0);
  for (;;) {  // workers notify only when the count reaches zero
    const int left = pending_.load(std::memory_order_acquire);
    if (left == 0) break;
    if (spin_while_equal(pending_, left) != left) continue;
    pending_.wait(left, std::memory_order_acquire);
  }
  job_ = nullptr;
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  const int64_t max_chunks = std::max<int64_t>(1, n / min_chunk);
  const int n_chunks = static_cast<int>(std::min<int64_t>(size(), max_chunks));
  if (n_chunks == 1) {
    fn(0, n);
    return;
  }
  const int64_t chunk = (n + n_chunks - 1) / n_chunks;
  run(n_chunks, [&](int i, int) {
    const int64_t begin = i * chunk;
    const int64_t end = std::min(n, begin + chunk);
    if (begin < end) fn(begin, end);
  });
}

}  // namespace shardlm
