// What one streaming request's answer shows, event by event, shared by both clients of
// shardlm-serve-bench (stream_client.cpp over cpp-httplib, event_loop_client.cpp over epoll):
// StreamState turns SSE payloads into a StreamResult's timings and counts; error_message reads
// an OpenAI-style error body. Not an HTTP client and not the SSE splitter (sse_parser.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "apps/shardlm-serve-bench/stream_client.h"

namespace shardlm::serve_bench {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxErrorBody = 64 * 1024;  // kept of a non-200 answer's body

inline double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The message of an OpenAI-style error body ({"error": {"message": ...}} or {"error": "..."}),
// else the body itself, shortened.
std::string error_message(const std::string& body);

// What one request's stream has shown so far.
class StreamState {
 public:
  StreamState(Endpoint endpoint, Clock::time_point start, StreamResult& out)
      : endpoint_(endpoint), start_(start), out_(out) {}

  // One SSE payload that arrived at `now`. False (with out_.error set) to stop reading.
  bool on_event(const std::string& payload, Clock::time_point now);
  // Records a failure (kind and message) and returns false.
  bool fail(std::string kind, std::string message);
  bool done() const { return done_; }

 private:
  Endpoint endpoint_;
  Clock::time_point start_, last_text_;
  StreamResult& out_;
  bool done_ = false;
};

}  // namespace shardlm::serve_bench
