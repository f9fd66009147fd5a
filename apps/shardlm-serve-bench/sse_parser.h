// An incremental Server-Sent Events splitter: feed it the response body in whatever pieces the
// network delivers, get back the data payload of each complete event. Follows the SSE line
// rules: lines end in LF, CRLF or CR (also when the CR and the LF arrive in different pieces), a
// blank line ends an event, lines starting with ':' are comments, several `data:` lines of one
// event are joined with '\n', other fields (event:, id:, retry:) are ignored. An OpenAI stream's
// `data: [DONE]` comes back like any other payload. Not a JSON parser and not an HTTP client.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shardlm::serve_bench {

class SseParser {
 public:
  // Appends to `events` the payload of every event that `bytes` completes, in order.
  void feed(std::string_view bytes, std::vector<std::string>& events);
  // End of the body: an event that had data lines but no closing blank line is dropped, as the
  // SSE rules say; returns true when such an unfinished event or line was pending.
  bool finish();

 private:
  void end_line(std::vector<std::string>& events);

  std::string line_;           // the current line, without its end
  std::string data_;           // the data lines of the current event so far
  bool has_data_ = false;      // the current event has at least one data line
  bool skip_next_lf_ = false;  // the last byte was a CR: an LF right after it belongs to it
};

}  // namespace shardlm::serve_bench
