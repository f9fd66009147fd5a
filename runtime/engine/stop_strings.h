// Stop strings for streamed text: text arrives in pieces (one per generated token, already
// UTF-8-safe from text::StreamDecoder) and a stop string may span several pieces. The filter
// holds back the shortest tail that could still grow into a stop string, releases everything
// before it, and on a match releases the text up to (not including) the stop string and then
// nothing more. Not here: token-id stops (generation.h) and detokenization (runtime/text).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shardlm {

class StopStringFilter {
 public:
  // Empty strings are ignored.
  explicit StopStringFilter(std::vector<std::string> stops);

  // Adds a piece; returns the text that is now safe to emit (possibly empty).
  std::string put(std::string_view piece);
  // End of generation without a match: returns the held-back tail.
  std::string flush();

  bool stopped() const { return matched_ >= 0; }
  // The stop string that matched ("" when none).
  std::string matched() const;
  // Bytes currently held back.
  size_t held() const { return pending_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  int matched_ = -1;
};

}  // namespace shardlm
