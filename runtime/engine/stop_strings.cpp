// StopStringFilter: earliest match across pieces, minimal hold-back.
#include "runtime/engine/stop_strings.h"

#include <algorithm>

namespace shardlm {

StopStringFilter::StopStringFilter(std::vector<std::string> stops) {
  for (std::string& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopStringFilter::matched() const {
  return matched_ >= 0 ? stops_[static_cast<size_t>(matched_)] : std::string();
}

std::string StopStringFilter::put(std::string_view piece) {
  if (stopped()) return {};
  pending_.append(piece);
  // The earliest occurrence of any stop string (ties: the longest) ends the text.
  size_t best = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = pending_.find(stops_[i]);
    if (at == std::string::npos) continue;
    if (best == std::string::npos || at < best ||
        (at == best && stops_[i].size() > stops_[static_cast<size_t>(matched_)].size())) {
      best = at;
      matched_ = static_cast<int>(i);
    }
  }
  if (best != std::string::npos) {
    std::string out = pending_.substr(0, best);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    const size_t max_len = std::min(s.size() - 1, pending_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStringFilter::flush() {
  if (stopped()) return {};
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace shardlm
