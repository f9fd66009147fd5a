// Metrics: counters and fixed-bucket histograms rendered as Prometheus text.
#include "apps/shardlm-serve/metrics.h"

#include <cstdio>

namespace shardlm::serve {

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void gauge(std::string& out, const std::string& name, const std::string& help, double v,
           const char* type = "gauge") {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  out += name + " " + num(v) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, const std::string& help, std::string& out) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
            0.5, 0.75, 1, 2.5}),
      latency_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120}) {}

void Metrics::record(int status, int64_t prompt_tokens, int64_t completion_tokens,
                     double ttft_seconds, const std::vector<double>& inter_token_seconds,
                     double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++by_status_[status];
  prompt_tokens_ += static_cast<uint64_t>(std::max<int64_t>(prompt_tokens, 0));
  generation_tokens_ += static_cast<uint64_t>(std::max<int64_t>(completion_tokens, 0));
  if (ttft_seconds >= 0) ttft_.observe(ttft_seconds);
  for (double s : inter_token_seconds) itl_.observe(s);
  latency_.observe(seconds);
}

std::string Metrics::render(const StepEngineStats& e, int64_t in_flight) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP shardlm_requests_total HTTP requests to the completion endpoints, by status.\n";
  out += "# TYPE shardlm_requests_total counter\n";
  for (const auto& [status, n] : by_status_) {
    out += "shardlm_requests_total{status=\"" + std::to_string(status) + "\"} " +
           std::to_string(n) + "\n";
  }
  gauge(out, "shardlm_prompt_tokens_total", "Prompt tokens of finished requests.",
        static_cast<double>(prompt_tokens_), "counter");
  gauge(out, "shardlm_generation_tokens_total", "Generated tokens of finished requests.",
        static_cast<double>(generation_tokens_), "counter");
  ttft_.render("shardlm_time_to_first_token_seconds", "Request arrival to its first token.", out);
  itl_.render("shardlm_inter_token_latency_seconds", "Gap between a choice's successive tokens.",
              out);
  latency_.render("shardlm_request_latency_seconds", "Request arrival to its last byte.", out);
  gauge(out, "shardlm_requests_in_flight", "Completion requests the server is answering.",
        static_cast<double>(in_flight));
  gauge(out, "shardlm_num_requests_running", "Sequences in the step engine's running set.",
        static_cast<double>(e.n_running));
  gauge(out, "shardlm_num_requests_waiting", "Sequences waiting for admission.",
        static_cast<double>(e.n_waiting));
  gauge(out, "shardlm_kv_blocks_used", "KV cache blocks held by sequences.",
        static_cast<double>(e.n_blocks_used));
  gauge(out, "shardlm_kv_blocks_total", "KV cache blocks in the pool.",
        static_cast<double>(e.n_blocks));
  gauge(out, "shardlm_prefix_cache_hit_rate",
        "Prompt tokens served by the prefix cache / prompt tokens looked up.",
        e.prefix_queried_tokens ? static_cast<double>(e.prefix_hit_tokens) /
                                      static_cast<double>(e.prefix_queried_tokens)
                                : 0.0);
  gauge(out, "shardlm_preemptions_total", "Sequences preempted for KV space.",
        static_cast<double>(e.n_preemptions), "counter");
  return out;
}

}  // namespace shardlm::serve
