// Internal state of a Tokenizer (see tokenizer.h): the pipeline stages and the added-token
// tables. Built by tokenizer_load.cpp, used by tokenizer.cpp. Not a public header.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/text/added_vocab.h"
#include "runtime/text/bpe.h"
#include "runtime/text/decoder.h"
#include "runtime/text/normalizer.h"
#include "runtime/text/post_processor.h"
#include "runtime/text/pre_tokenizer.h"

namespace shardlm::text {

struct TokenizerImpl {
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;
  PostProcessor post;
  std::vector<AddedToken> added;                    // in declaration order
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into added
  VocabMap added_by_content;
  TokenMatcher raw_matcher, normalized_matcher;
  bool byte_level_decoder = false;
  bool clean_up_spaces = false;
  // The most input bytes one token can stand for; 0 when no bound holds (token_bound.h).
  size_t max_input_bytes_per_token = 0;
  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  std::string bos_token, eos_token;

  // Rebuilds the matchers and lookup maps after `added` changed.
  void index_added();
};

}  // namespace shardlm::text
