// The SSE splitter of sse_parser.h: line splitting across pieces, then the event rules. Not a
// JSON parser.
#include "apps/shardlm-serve-bench/sse_parser.h"

namespace shardlm::serve_bench {

void SseParser::feed(std::string_view bytes, std::vector<std::string>& events) {
  for (const char c : bytes) {
    if (skip_next_lf_) {
      skip_next_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r') {
      skip_next_lf_ = true;
      end_line(events);
    } else if (c == '\n') {
      end_line(events);
    } else {
      line_.push_back(c);
    }
  }
}

bool SseParser::finish() {
  const bool pending = has_data_ || !line_.empty();
  line_.clear();
  data_.clear();
  has_data_ = false;
  skip_next_lf_ = false;
  return pending;
}

void SseParser::end_line(std::vector<std::string>& events) {
  if (line_.empty()) {  // a blank line ends the event
    if (has_data_) events.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line_.front() != ':') {  // not a comment
    const size_t colon = line_.find(':');
    const std::string_view field = std::string_view(line_).substr(0, colon);
    if (field == "data") {
      std::string_view value;
      if (colon != std::string::npos) {
        value = std::string_view(line_).substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      }
      if (has_data_) data_.push_back('\n');
      data_.append(value);
      has_data_ = true;
    }
  }
  line_.clear();
}

}  // namespace shardlm::serve_bench
