// A compiled PCRE2 regular expression (UTF + UCP, JIT when available) used by the Split
// pre-tokenizer and the Replace normalizer/decoder. Finds all non-overlapping matches.
// Not a general regex API: no captures, no substitution.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardlm::text {

class Regex {
 public:
  // Throws Error(kFormat) naming `what` when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges [begin, end) of all non-overlapping matches in well-formed UTF-8 `s`, left to
  // right. Empty matches are skipped (as the Rust onig/regex iterators used by HF do).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string pattern_;
};

// Escapes a literal string so that it matches itself as a PCRE2 pattern.
std::string regex_escape(std::string_view literal);

}  // namespace shardlm::text
