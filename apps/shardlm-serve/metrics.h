// Prometheus metrics of shardlm-serve (GET /metrics, text exposition format 0.0.4): requests
// by HTTP status, prompt and generated tokens, time to first token, inter-token latency and
// request latency histograms (counted by the server), and from the step engine: running and
// waiting sequences, KV blocks used and total, prefix-cache hit rate. Thread-safe. Not here:
// the HTTP route (server.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/engine/step_engine.h"

namespace shardlm::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // upper bounds, ascending (+Inf is implied)
  void observe(double v);
  // Appends the _bucket, _sum and _count lines of `name`.
  void render(const std::string& name, const std::string& help, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  // One finished request. ttft < 0: none (an error, or no token).
  void record(int status, int64_t prompt_tokens, int64_t completion_tokens, double ttft_seconds,
              const std::vector<double>& inter_token_seconds, double seconds);
  std::string render(const StepEngineStats& engine, int64_t in_flight) const;

 private:
  mutable std::mutex mu_;
  std::map<int, uint64_t> by_status_;
  uint64_t prompt_tokens_ = 0, generation_tokens_ = 0;
  Histogram ttft_, itl_, latency_;
};

}  // namespace shardlm::serve
