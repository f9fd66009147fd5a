// ThreadGroup barrier/abort, the threads communicator, and RankThreads.
#include "runtime/comm/thread_group.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "runtime/core/status.h"

namespace shardlm {

ThreadGroup::ThreadGroup(int size) : size_(size), slots_(static_cast<size_t>(std::max(size, 1))) {
  if (size < 1) fail(StatusCode::kInvalidArg, "thread group of size " + std::to_string(size));
}

void ThreadGroup::abort(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_) return;
    aborted_ = true;
    abort_reason_ = why;
    aborted_flag_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

bool ThreadGroup::aborted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return aborted_;
}

void ThreadGroup::wait_all() {
  std::unique_lock<std::mutex> lock(mu_);
  if (aborted_) fail(StatusCode::kComm, "collective aborted: " + abort_reason_);
  const uint64_t gen = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    published_generation_.store(generation_, std::memory_order_release);
    cv_.notify_all();
    return;
  }
  // Spin briefly before sleeping: the ranks of a decode step meet every few tens of
  // microseconds, and a condition-variable wake-up costs about as much as the work between.
  lock.unlock();
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
  for (int i = 0;; ++i) {
    if (published_generation_.load(std::memory_order_acquire) != gen) return;
    if (aborted_flag_.load(std::memory_order_acquire)) break;
    if ((i & 63) == 0 && std::chrono::steady_clock::now() > until) break;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  lock.lock();
  cv_.wait(lock, [&] { return generation_ != gen || aborted_; });
  if (generation_ == gen) fail(StatusCode::kComm, "collective aborted: " + abort_reason_);
}

namespace {

class ThreadsCommunicator final : public Communicator {
 public:
  ThreadsCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }

  // Reduce-scatter + write-back: rank r sums chunk r of every rank's buffer in rank order and
  // writes the sum into chunk r of every rank's buffer. Chunks are disjoint, so no rank writes
  // what another still reads; every element is summed once, so all ranks agree bit for bit.
  void all_reduce_sum(float* data, int64_t n, MemorySpace space) override {
    const int size = group_.size();
    if (size == 1) return;
    require_host(space, "the threads communicator");
    group_.publish(rank_, data, static_cast<size_t>(n) * sizeof(float));
    group_.wait_all();
    for (int r = 0; r < size; ++r) {
      if (group_.slot(r).bytes != static_cast<size_t>(n) * sizeof(float)) {
        fail(StatusCode::kComm, "all_reduce: rank " + std::to_string(r) + " passed " +
                                    std::to_string(group_.slot(r).bytes / sizeof(float)) +
                                    " elements, rank " + std::to_string(rank_) + " passed " +
                                    std::to_string(n));
      }
    }
    const int64_t chunk = (n + size - 1) / size;
    const int64_t begin = std::min<int64_t>(n, chunk * rank_);
    const int64_t end = std::min<int64_t>(n, begin + chunk);
    if (end > begin) {
      sum_.assign(static_cast<size_t>(end - begin), 0.0f);
      for (int r = 0; r < size; ++r) {
        const float* src = static_cast<const float*>(group_.slot(r).ptr) + begin;
        for (int64_t i = 0; i < end - begin; ++i) sum_[static_cast<size_t>(i)] += src[i];
      }
      for (int r = 0; r < size; ++r) {
        float* dst = const_cast<float*>(static_cast<const float*>(group_.slot(r).ptr)) + begin;
        std::memcpy(dst, sum_.data(), static_cast<size_t>(end - begin) * sizeof(float));
      }
    }
    group_.wait_all();
  }

  void all_gather(const void* send, size_t send_bytes, void* recv, size_t recv_bytes,
                  MemorySpace space) override {
    require_host(space, "the threads communicator");
    group_.publish(rank_, send, send_bytes);
    group_.wait_all();
    size_t total = 0;
    for (int r = 0; r < group_.size(); ++r) total += group_.slot(r).bytes;
    if (total != recv_bytes) {
      group_.wait_all();  // keep the others' buffers alive until they are done, then report
      fail(StatusCode::kComm, "all_gather: ranks sent " + std::to_string(total) +
                                  " bytes in all, rank " + std::to_string(rank_) + " expected " +
                                  std::to_string(recv_bytes));
    }
    uint8_t* out = static_cast<uint8_t*>(recv);
    for (int r = 0; r < group_.size(); ++r) {
      const ThreadGroup::Slot& s = group_.slot(r);
      if (s.bytes) std::memcpy(out, s.ptr, s.bytes);
      out += s.bytes;
    }
    group_.wait_all();
  }

  void broadcast(void* data, size_t bytes, int root, MemorySpace space) override {
    require_host(space, "the threads communicator");
    if (root < 0 || root >= group_.size()) {
      fail(StatusCode::kComm,
           "broadcast from rank " + std::to_string(root) + " of " + std::to_string(group_.size()));
    }
    group_.publish(rank_, data, bytes);
    group_.wait_all();
    const ThreadGroup::Slot& s = group_.slot(root);
    const bool ok = s.bytes == bytes;
    if (ok && rank_ != root && bytes) std::memcpy(data, s.ptr, bytes);
    group_.wait_all();
    if (!ok) {
      fail(StatusCode::kComm, "broadcast: root sent " + std::to_string(s.bytes) + " bytes, rank " +
                                  std::to_string(rank_) + " expected " + std::to_string(bytes));
    }
  }

  void barrier() override { group_.wait_all(); }
  bool aborted() const override { return group_.aborted(); }

 private:
  ThreadGroup& group_;
  int rank_;
  std::vector<float> sum_;
};

}  // namespace

std::unique_ptr<Communicator> ThreadGroup::communicator(int rank) {
  if (rank < 0 || rank >= size_) {
    fail(StatusCode::kInvalidArg,
         "rank " + std::to_string(rank) + " outside a group of " + std::to_string(size_));
  }
  return std::make_unique<ThreadsCommunicator>(*this, rank);
}

RankThreads::RankThreads(int n_ranks, ThreadGroup* group, bool caller_runs_rank0)
    : group_(group),
      n_ranks_(std::max(n_ranks, 1)),
      caller_runs_rank0_(caller_runs_rank0),
      errors_(static_cast<size_t>(std::max(n_ranks, 1))) {
  for (int r = caller_runs_rank0_ ? 1 : 0; r < n_ranks_; ++r) {
    threads_.emplace_back([this, r] { loop(r); });
  }
}

RankThreads::~RankThreads() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::exception_ptr RankThreads::call(const std::function<void(int)>& fn, int rank) {
  try {
    fn(rank);
  } catch (const std::exception& e) {
    if (group_) group_->abort("rank " + std::to_string(rank) + " failed: " + e.what());
    return std::current_exception();
  } catch (...) {
    if (group_) group_->abort("rank " + std::to_string(rank) + " failed");
    return std::current_exception();
  }
  return nullptr;
}

void RankThreads::loop(int rank) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int)>* fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      fn = fn_;
    }
    std::exception_ptr error = call(*fn, rank);
    {
      std::lock_guard<std::mutex> lock(mu_);
      errors_[static_cast<size_t>(rank)] = error;
      if (--pending_ == 0) done_cv_.notify_all();
    }
  }
}

void RankThreads::run(const std::function<void(int)>& fn) {
  const bool threaded = !threads_.empty();
  if (threaded) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      pending_ = static_cast<int>(threads_.size());
      std::fill(errors_.begin(), errors_.end(), nullptr);
      ++generation_;
    }
    start_cv_.notify_all();
  }
  // Rank 0 on this thread, while the others run on theirs.
  std::exception_ptr rank0_error = caller_runs_rank0_ ? call(fn, 0) : nullptr;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n_ranks_));
  if (threaded) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    errors = errors_;
    fn_ = nullptr;
  }
  if (caller_runs_rank0_) errors[0] = rank0_error;
  // Prefer a rank's own failure over the kComm errors its abort caused in the others.
  std::exception_ptr first, first_comm;
  for (const auto& e : errors) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const Error& err) {
      if (err.code() == StatusCode::kComm && err.what() &&
          std::string(err.what()).rfind("collective aborted", 0) == 0) {
        if (!first_comm) first_comm = e;
        continue;
      }
      if (!first) first = e;
    } catch (...) {
      if (!first) first = e;
    }
  }
  if (first) std::rethrow_exception(first);
  if (first_comm) std::rethrow_exception(first_comm);
}

}  // namespace shardlm
