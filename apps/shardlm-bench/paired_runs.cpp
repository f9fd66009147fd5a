// The two sides of run_interleaved (paired_runs.h) are two threads passing one turn between
// them: a side runs only while it holds the turn and hands it over after every token it
// generates (from generate()'s per-token callback). Both sides run on threads of their own, so
// neither is the long-lived calling thread (with side A on the caller, a control of one pack
// against itself read 0.964x; with both on new threads 0.978x and 1.004x, Zen 4).
#include "apps/shardlm-bench/paired_runs.h"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "runtime/engine/generate.h"

namespace shardlm::bench {

namespace {

using Clock = std::chrono::steady_clock;

class Turn {
 public:
  explicit Turn(int first) : holder_(first) {}

  // Blocks until `side` holds the turn or the other side has finished.
  void wait_for(int side) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return holder_ == side || done_[1 - side]; });
  }
  void pass_from(int side) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      holder_ = 1 - side;
    }
    cv_.notify_all();
  }
  void finish(int side) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_[side] = true;
      holder_ = 1 - side;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int holder_;
  bool done_[2] = {false, false};
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

PairTimes run_interleaved(Engine& a, Engine& b, const std::vector<int32_t>& prompt, int64_t gen,
                          bool b_first) {
  Turn turn(b_first ? 1 : 0);
  PairTimes out;
  std::exception_ptr errors[2];
  auto side = [&](int me, Engine& engine, SideTimes& t) {
    try {
      turn.wait_for(me);
      Clock::time_point start = Clock::now();
      GenerateOptions go;
      go.max_new_tokens = gen;
      go.ignore_eos = true;
      go.temperature = 0;
      int64_t n = 0;
      generate(engine, prompt, go, [&](int32_t) {
        const double dt = seconds_since(start);
        if (n++ == 0) {
          t.prefill_s = dt;
        } else {
          t.decode_s += dt;
          ++t.decode_steps;
        }
        turn.pass_from(me);
        turn.wait_for(me);
        start = Clock::now();
        return true;
      });
    } catch (...) {
      errors[me] = std::current_exception();
    }
    turn.finish(me);
  };
  std::thread first([&] { side(0, a, out.a); });
  std::thread other([&] { side(1, b, out.b); });
  first.join();
  other.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return out;
}

}  // namespace shardlm::bench
