// summarize_run(), text_report() and json_report() of report.h. Not the load generation.
#include "apps/shardlm-serve-bench/report.h"

#include <cstdio>

namespace shardlm::serve_bench {
namespace {

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string percentiles_line(const Summary& s, const char* what) {
  if (s.count == 0) return "-  (no " + std::string(what) + ")";
  return "p50 " + format("%.2f", s.p50) + "  p90 " + format("%.2f", s.p90) + "  p99 " +
         format("%.2f", s.p99) + "  (" + std::to_string(s.count) + " " + what + ")";
}

nlohmann::json summary_json(const Summary& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"min", s.min}, {"max", s.max},
          {"p50", s.p50},     {"p90", s.p90},   {"p99", s.p99}};
}

std::vector<double> scaled(std::vector<double> v, double by) {
  for (double& x : v) x *= by;
  return v;
}

}  // namespace

RunSummary summarize_run(const std::vector<StreamResult>& results, double wall_s) {
  RunSummary s;
  s.wall_s = wall_s;
  std::vector<double> ttft, itl, latency;
  for (const StreamResult& r : results) {
    if (!r.ok) {
      ++s.failed;
      ++s.errors[r.error_kind];
      if (s.first_error.empty()) s.first_error = r.error;
      continue;
    }
    ++s.ok;
    s.output_tokens += r.completion_tokens;
    if (!r.usage_reported) ++s.tokens_counted;
    if (r.ttft_s >= 0) {
      ttft.push_back(r.ttft_s);
    } else {
      ++s.no_text;
    }
    itl.insert(itl.end(), r.itl_s.begin(), r.itl_s.end());
    latency.push_back(r.total_s);
  }
  s.ttft_ms = summarize(scaled(std::move(ttft), 1e3));
  s.itl_ms = summarize(scaled(std::move(itl), 1e3));
  s.latency_ms = summarize(scaled(std::move(latency), 1e3));
  return s;
}

std::string describe_config(const RunConfig& c) {
  return c.host + ":" + std::to_string(c.port) + " POST " + endpoint_path(c.endpoint) +
         ", model \"" + c.model + "\", concurrency " + std::to_string(c.concurrency) + ", " +
         std::to_string(c.requests) + " requests, max_tokens " + std::to_string(c.max_tokens) +
         ", " + std::to_string(c.prompt_words) + "-word prompts (seed " + std::to_string(c.seed) +
         "), temperature " + format("%g", c.temperature) + ", ignore_eos " +
         (c.ignore_eos ? "on" : "off");
}

std::string text_report(const RunConfig& c, const RunSummary& s) {
  std::string out = "shardlm-serve-bench: " + describe_config(c) + "\n";
  out += "requests:          " + std::to_string(s.ok) + " ok, " + std::to_string(s.failed) +
         " failed\n";
  out += "wall time:         " + format("%.3f", s.wall_s) + " s\n";
  out += "requests/s:        " + format("%.2f", s.requests_per_s()) + "\n";
  out += "output tokens/s:   " + format("%.1f", s.output_tokens_per_s()) + "  (" +
         std::to_string(s.output_tokens) + " tokens)\n";
  out += "TTFT ms:           " + percentiles_line(s.ttft_ms, "requests") + "\n";
  out += "ITL ms:            " + percentiles_line(s.itl_ms, "gaps") + "\n";
  out += "latency ms:        " + percentiles_line(s.latency_ms, "requests") + "\n";
  out += "tokens/request:    " + format("%.1f", s.mean_output_tokens()) + " mean";
  if (s.tokens_counted > 0) {
    out += "  (" + std::to_string(s.tokens_counted) +
           " requests without usage: their tokens are counted as text chunks)";
  }
  out += "\n";
  if (s.no_text > 0) {
    out += "note:              " + std::to_string(s.no_text) +
           " successful requests streamed no text (no TTFT)\n";
  }
  if (s.failed > 0) {
    out += "errors:           ";
    for (const auto& [kind, n] : s.errors) out += " " + kind + " x" + std::to_string(n) + ";";
    out.pop_back();
    out += "\nfirst error:       " + s.first_error + "\n";
  }
  return out;
}

nlohmann::json json_report(const RunConfig& c, const RunSummary& s) {
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [kind, n] : s.errors) errors[kind] = n;
  return {
      {"config",
       {{"host", c.host},
        {"port", c.port},
        {"endpoint", endpoint_path(c.endpoint)},
        {"model", c.model},
        {"concurrency", c.concurrency},
        {"requests", c.requests},
        {"max_tokens", c.max_tokens},
        {"prompt_words", c.prompt_words},
        {"seed", c.seed},
        {"temperature", c.temperature},
        {"ignore_eos", c.ignore_eos},
        {"timeout_s", c.timeout_s}}},
      {"requests_ok", s.ok},
      {"requests_failed", s.failed},
      {"wall_s", s.wall_s},
      {"requests_per_s", s.requests_per_s()},
      {"output_tokens", s.output_tokens},
      {"output_tokens_per_s", s.output_tokens_per_s()},
      {"mean_output_tokens", s.mean_output_tokens()},
      {"requests_without_usage", s.tokens_counted},
      {"requests_without_text", s.no_text},
      {"ttft_ms", summary_json(s.ttft_ms)},
      {"itl_ms", summary_json(s.itl_ms)},
      {"latency_ms", summary_json(s.latency_ms)},
      {"errors", errors},
      {"first_error",
       s.first_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.first_error)},
  };
}

}  // namespace shardlm::serve_bench
