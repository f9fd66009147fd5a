// Added-token matcher (see added_vocab.h). Mirrors tokenizers/src/tokenizer/added_vocabulary.rs
// split_with_indices: leftmost-longest matches, single_word requires non-word neighbours,
// lstrip/rstrip widen the match over adjacent whitespace without crossing an earlier match.
#include "runtime/text/added_vocab.h"

#include "runtime/text/normalizer.h"
#include "runtime/text/utf8.h"

namespace shardlm::text {

namespace {
bool is_word_cp(uint32_t cp) {
  // Rust char::is_alphanumeric || '_' for ASCII; any non-space, non-ASCII-punct above 0x7F is
  // treated as a word character (letters and digits of other scripts).
  if (cp < 0x80) return std::isalnum(static_cast<int>(cp)) || cp == '_';
  return !is_unicode_space(cp);
}

uint32_t cp_before(const std::string& s, size_t pos) {
  size_t b = pos - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  size_t i = b;
  return utf8_next(s, i);
}
}  // namespace

void TokenMatcher::build(const std::vector<const AddedToken*>& tokens,
                         const std::vector<std::string>& patterns) {
  tokens_ = tokens;
  nodes_.assign(1, Node());
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    first_byte_[static_cast<unsigned char>(p[0])] = true;
    int32_t n = 0;
    for (unsigned char c : p) {
      auto it = nodes_[n].next.find(c);
      if (it == nodes_[n].next.end()) {
        nodes_.push_back(Node());
        const int32_t child = static_cast<int32_t>(nodes_.size()) - 1;
        nodes_[n].next[c] = child;
        n = child;
      } else {
        n = it->second;
      }
    }
    if (nodes_[n].token < 0) nodes_[n].token = static_cast<int32_t>(t);
  }
}

void TokenMatcher::split(std::vector<Piece>& pieces) const {
  if (tokens_.empty()) return;
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (auto& piece : pieces) {
    if (piece.added_id >= 0) {
      out.push_back(std::move(piece));
      continue;
    }
    const std::string& s = piece.text;
    struct Hit {
      size_t b, e;
      int32_t id;
    };
    std::vector<Hit> hits;
    size_t prev_end = 0;
    size_t pos = 0;
    while (pos < s.size()) {
      if (!first_byte_[static_cast<unsigned char>(s[pos])]) {
        ++pos;
        continue;
      }
      // Longest pattern starting at pos.
      int32_t n = 0, best = -1;
      size_t best_end = 0;
      for (size_t k = pos; k < s.size(); ++k) {
        auto it = nodes_[n].next.find(static_cast<unsigned char>(s[k]));
        if (it == nodes_[n].next.end()) break;
        n = it->second;
        if (nodes_[n].token >= 0) {
          best = nodes_[n].token;
          best_end = k + 1;
        }
      }
      if (best < 0) {
        ++pos;
        continue;
      }
      const AddedToken& tok = *tokens_[best];
      size_t b = pos, e = best_end;
      if (tok.single_word) {
        const bool left_ok = b == 0 || !is_word_cp(cp_before(s, b));
        size_t j = e;
        const bool right_ok = e == s.size() || !is_word_cp(utf8_next(s, j));
        if (!left_ok || !right_ok) {
          ++pos;
          continue;
        }
      }
      if (tok.lstrip) {
        while (b > prev_end) {
          const uint32_t cp = cp_before(s, b);
          if (!is_unicode_space(cp)) break;
          size_t back = b - 1;
          while (back > prev_end && (static_cast<unsigned char>(s[back]) & 0xC0) == 0x80) --back;
          b = back;
        }
      }
      if (tok.rstrip) {
        while (e < s.size()) {
          size_t j = e;
          if (!is_unicode_space(utf8_next(s, j))) break;
          e = j;
        }
      }
      hits.push_back({b, e, tok.id});
      prev_end = e;
      pos = e;
    }
    if (hits.empty()) {
      out.push_back(std::move(piece));
      continue;
    }
    size_t cur = 0;
    for (const Hit& h : hits) {
      if (h.b > cur) out.push_back({s.substr(cur, h.b - cur), -1, piece.at_start && cur == 0});
      out.push_back({s.substr(h.b, h.e - h.b), h.id, false});
      cur = h.e;
    }
    if (cur < s.size()) out.push_back({s.substr(cur), -1, false});
  }
  pieces = std::move(out);
}

}  // namespace shardlm::text
