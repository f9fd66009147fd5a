// Pre-tokenizer implementations (see pre_tokenizer.h). Splitting follows the HF tokenizers
// SplitDelimiterBehavior rules exactly: matches are computed over one piece, then merged with
// their neighbours as the behavior says, and empty results are dropped.
#include "runtime/text/pre_tokenizer.h"

#include <utility>

#include "runtime/text/byte_level.h"
#include "runtime/text/normalizer.h"
#include "runtime/text/regex.h"
#include "runtime/text/utf8.h"

namespace shardlm::text {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior parse_behavior(const Json& j, const std::string& path) {
  const std::string b = need_string(j, "behavior", path);
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  bad_field(path + ".behavior", "unknown split behavior '" + b + "'");
}

using Span = std::pair<size_t, size_t>;
struct Part {
  Span span;
  bool is_match;
};

// Applies a delimiter behavior to the match list of `text` and returns the kept byte spans.
std::vector<Span> apply_behavior(size_t len, const std::vector<Span>& matches, Behavior behavior,
                                 bool invert) {
  std::vector<Part> parts;
  size_t prev = 0;
  for (auto m : matches) {
    if (prev != m.first) parts.push_back({{prev, m.first}, invert});
    parts.push_back({m, !invert});
    prev = m.second;
  }
  if (prev != len) parts.push_back({{prev, len}, invert});

  std::vector<Span> out;
  switch (behavior) {
    case Behavior::kIsolated:
      for (auto& p : parts) out.push_back(p.span);
      break;
    case Behavior::kRemoved:
      for (auto& p : parts)
        if (!p.is_match) out.push_back(p.span);
      break;
    case Behavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (auto& p : parts) {
        if (p.is_match && !prev_match && !out.empty()) {
          out.back().second = p.span.second;
        } else {
          out.push_back(p.span);
        }
        prev_match = p.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool prev_match = false;
      for (size_t k = parts.size(); k-- > 0;) {
        const Part& p = parts[k];
        if (p.is_match && !prev_match && !out.empty()) {
          out.back().first = p.span.first;
        } else {
          out.push_back(p.span);
        }
        prev_match = p.is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
    case Behavior::kContiguous: {
      bool prev_match = false;
      for (auto& p : parts) {
        if (p.is_match == prev_match && !out.empty()) {
          out.back().second = p.span.second;
        } else {
          out.push_back(p.span);
        }
        prev_match = p.is_match;
      }
      break;
    }
  }
  return out;
}

// Literal matches of `pat` in s.
std::vector<Span> find_literal(const std::string& s, const std::string& pat) {
  std::vector<Span> out;
  if (pat.empty()) return out;
  size_t pos = 0;
  while ((pos = s.find(pat, pos)) != std::string::npos) {
    out.push_back({pos, pos + pat.size()});
    pos += pat.size();
  }
  return out;
}

// Splits each non-added piece with `find` + behavior.
template <typename Find>
void split_pieces(std::vector<Piece>& pieces, Behavior behavior, bool invert, Find&& find) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (auto& p : pieces) {
    if (p.added_id >= 0) {
      out.push_back(std::move(p));
      continue;
    }
    const auto spans = apply_behavior(p.text.size(), find(p.text), behavior, invert);
    bool first = true;
    for (auto [b, e] : spans) {
      if (e <= b) continue;
      out.push_back({p.text.substr(b, e - b), -1, p.at_start && first && b == 0});
      first = false;
    }
  }
  pieces = std::move(out);
}

class SequencePre : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> items;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : items) p->pre_tokenize(pieces);
  }
};

class SplitPre : public PreTokenizer {
 public:
  std::string literal;
  std::unique_ptr<Regex> regex;
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, behavior, invert, [&](const std::string& s) {
      return regex ? regex->find_all(s) : find_literal(s, literal);
    });
  }
};

class ByteLevelPre : public PreTokenizer {
 public:
  bool add_prefix_space = false;
  std::unique_ptr<Regex> regex;  // null when use_regex is false
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space) {
      for (auto& p : pieces)
        if (p.added_id < 0 && (p.text.empty() || p.text[0] != ' '))
          p.text.insert(p.text.begin(), ' ');
    }
    if (regex) {
      split_pieces(pieces, Behavior::kIsolated, false,
                   [&](const std::string& s) { return regex->find_all(s); });
    }
    for (auto& p : pieces)
      if (p.added_id < 0) p.text = byte_level_encode(p.text);
  }
};

class MetaspacePre : public PreTokenizer {
 public:
  std::string replacement = "\xE2\x96\x81";
  enum class Scheme { kAlways, kFirst, kNever } scheme = Scheme::kAlways;
  bool split = true;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (auto& p : pieces) {
      if (p.added_id >= 0) continue;
      p.text = replace_all(p.text, " ", replacement);
      const bool starts = p.text.compare(0, replacement.size(), replacement) == 0;
      if (!starts && (scheme == Scheme::kAlways || (scheme == Scheme::kFirst && p.at_start))) {
        p.text.insert(0, replacement);
      }
    }
    if (split) {
      split_pieces(pieces, Behavior::kMergedWithNext, false,
                   [&](const std::string& s) { return find_literal(s, replacement); });
    }
  }
};

class RegexPre : public PreTokenizer {  // Whitespace, Digits, Punctuation, WhitespaceSplit
 public:
  RegexPre(const std::string& pattern, Behavior b, bool inv, const std::string& path)
      : regex(pattern, path), behavior(b), invert(inv) {}
  Regex regex;
  Behavior behavior;
  bool invert;
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, behavior, invert, [&](const std::string& s) { return regex.find_all(s); });
  }
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string type = need_string(j, "type", path);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequencePre>();
    const Json& items = need(j, "pretokenizers", path);
    if (!items.is_array()) bad_field(path + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < items.size(); ++i) {
      auto p = make_pre_tokenizer(items[i], path + ".pretokenizers[" + std::to_string(i) + "]");
      if (p) seq->items.push_back(std::move(p));
    }
    return seq;
  }
  if (type == "Split") {
    auto p = std::make_unique<SplitPre>();
    const Json& pat = need(j, "pattern", path);
    if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string()) {
      p->regex = std::make_unique<Regex>(pat["Regex"].get<std::string>(), path + ".pattern");
    } else if (pat.is_object() && pat.contains("String") && pat["String"].is_string()) {
      p->literal = pat["String"].get<std::string>();
    } else {
      bad_field(path + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
    }
    p->behavior = parse_behavior(j, path);
    p->invert = opt_bool(j, "invert", path, false);
    return p;
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPre>();
    p->add_prefix_space = opt_bool(j, "add_prefix_space", path, true);
    if (opt_bool(j, "use_regex", path, true)) {
      p->regex = std::make_unique<Regex>(kGpt2Pattern, path + " (ByteLevel regex)");
    }
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePre>();
    p->replacement = opt_string(j, "replacement", path, "\xE2\x96\x81");
    if (utf8_decode_all(p->replacement).size() != 1)
      bad_field(path + ".replacement", "expected exactly one character");
    const std::string scheme = opt_string(j, "prepend_scheme", path, "");
    if (scheme == "always") {
      p->scheme = MetaspacePre::Scheme::kAlways;
    } else if (scheme == "first") {
      p->scheme = MetaspacePre::Scheme::kFirst;
    } else if (scheme == "never") {
      p->scheme = MetaspacePre::Scheme::kNever;
    } else if (scheme.empty()) {
      p->scheme = opt_bool(j, "add_prefix_space", path, true) ? MetaspacePre::Scheme::kAlways
                                                              : MetaspacePre::Scheme::kNever;
    } else {
      bad_field(path + ".prepend_scheme", "unknown value '" + scheme + "'");
    }
    p->split = opt_bool(j, "split", path, true);
    return p;
  }
  if (type == "Whitespace")
    return std::make_unique<RegexPre>(R"(\w+|[^\w\s]+)", Behavior::kRemoved, true, path);
  if (type == "WhitespaceSplit")
    return std::make_unique<RegexPre>(R"(\s+)", Behavior::kRemoved, false, path);
  if (type == "Digits") {
    const bool individual = opt_bool(j, "individual_digits", path, false);
    return std::make_unique<RegexPre>(
        R"(\p{N})", individual ? Behavior::kIsolated : Behavior::kContiguous, false, path);
  }
  if (type == "Punctuation") {
    const Behavior b = j.contains("behavior") ? parse_behavior(j, path) : Behavior::kIsolated;
    return std::make_unique<RegexPre>(R"([\p{P}\p{S}])", b, false, path);
  }
  fail(StatusCode::kUnsupported, path + ": pre-tokenizer type '" + type + "' is not supported");
}

}  // namespace shardlm::text
