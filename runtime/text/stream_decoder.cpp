// Streaming detokenizer (see stream_decoder.h). Follows tokenizers' step_decode_stream: decode
// the window, emit what extends past the previously decoded prefix unless it ends in U+FFFD,
// then slide the window so it keeps one token of left context (the Metaspace/Strip decoders
// drop a leading space only at the start of a window, so context keeps spaces right).
#include "runtime/text/stream_decoder.h"

namespace shardlm::text {

namespace {
bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

std::string StreamDecoder::put(int32_t id) {
  ids_.push_back(id);
  const std::string text = tok_.decode(ids_, skip_special_);
  if (text.size() <= prefix_.size() || ends_with_replacement(text)) return std::string();
  std::string fresh;
  if (text.compare(0, prefix_.size(), prefix_) == 0) {
    fresh = text.substr(prefix_.size());
  } else {
    fresh = text.substr(prefix_.size());  // decoder not prefix-stable: best effort
  }
  // Keep the ids decoded since the last emission as context for the next window.
  const size_t keep_from = prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(keep_from));
  prefix_index_ = ids_.size();
  prefix_ = tok_.decode(ids_, skip_special_);
  return fresh;
}

std::string StreamDecoder::flush() {
  const std::string text = tok_.decode(ids_, skip_special_);
  std::string rest = text.size() > prefix_.size() ? text.substr(prefix_.size()) : std::string();
  reset();
  return rest;
}

void StreamDecoder::reset() {
  ids_.clear();
  prefix_index_ = 0;
  prefix_.clear();
}

}  // namespace shardlm::text
