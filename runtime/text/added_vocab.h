// Added tokens of HF tokenizer.json ("added_tokens") with their flags, and the matcher that
// splits them out of the input before the model sees it: tokens with normalized=false are found
// in the raw text, tokens with normalized=true in each normalized segment (matching their
// normalized content), leftmost-longest, honouring lstrip/rstrip/single_word.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/text/pre_tokenizer.h"

namespace shardlm::text {

class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool normalized = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

class TokenMatcher {
 public:
  TokenMatcher() = default;
  // `patterns[i]` is what to look for for tokens[i] (its content, or its normalized content).
  void build(const std::vector<const AddedToken*>& tokens,
             const std::vector<std::string>& patterns);
  bool empty() const { return tokens_.empty(); }
  // Splits every non-added piece around the tokens found in it.
  void split(std::vector<Piece>& pieces) const;

 private:
  struct Node {
    std::unordered_map<unsigned char, int32_t> next;
    int32_t token = -1;  // index into tokens_ when a pattern ends here
  };
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace shardlm::text
