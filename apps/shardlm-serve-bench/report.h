// shardlm-serve-bench's result: the per-request results of a run folded into totals and latency
// summaries, printed as text or as one JSON object. Output tokens/s is the sum of the completion
// tokens of the successful requests over the wall time of the whole run; requests/s counts the
// successful requests, and the TTFT, ITL and latency summaries cover them only (a failed request
// adds to the error counts). Not the load generation (main.cpp) and not the HTTP client.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/shardlm-serve-bench/latency_stats.h"
#include "apps/shardlm-serve-bench/stream_client.h"

namespace shardlm::serve_bench {

// What was run (for the configuration line).
struct RunConfig {
  std::string host;
  int port = 0;
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  int concurrency = 0, requests = 0, max_tokens = 0, prompt_words = 0;
  double temperature = 0, timeout_s = 0;
  bool ignore_eos = false;
  uint64_t seed = 0;
};

struct RunSummary {
  size_t ok = 0, failed = 0;
  double wall_s = 0;
  int64_t output_tokens = 0;             // of the successful requests
  size_t tokens_counted = 0;             // successful requests without usage: tokens = text chunks
  size_t no_text = 0;                    // successful requests without any text-carrying chunk
  Summary ttft_ms, itl_ms, latency_ms;   // latency: request sent -> end of its stream
  std::map<std::string, size_t> errors;  // failed requests by StreamResult::error_kind
  std::string first_error;               // of the lowest-numbered failed request
  double requests_per_s() const { return wall_s > 0 ? static_cast<double>(ok) / wall_s : 0; }
  double output_tokens_per_s() const {
    return wall_s > 0 ? static_cast<double>(output_tokens) / wall_s : 0;
  }
  double mean_output_tokens() const {
    return ok > 0 ? static_cast<double>(output_tokens) / static_cast<double>(ok) : 0;
  }
};

RunSummary summarize_run(const std::vector<StreamResult>& results, double wall_s);

// The configuration line, without the program name.
std::string describe_config(const RunConfig& c);
std::string text_report(const RunConfig& c, const RunSummary& s);
nlohmann::json json_report(const RunConfig& c, const RunSummary& s);

}  // namespace shardlm::serve_bench
