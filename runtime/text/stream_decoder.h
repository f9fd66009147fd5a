// Incremental detokenizer for streaming generation: feed ids one at a time, get the new text
// each id completes. Never emits part of a UTF-8 character: text is held back while the decoded
// window ends in U+FFFD (an incomplete byte sequence), as HF tokenizers' DecodeStream does, and
// the concatenation of all outputs plus flush() equals Tokenizer::decode of all ids whenever the
// decoder is prefix-stable (true for ByteLevel and SentencePiece-style decoders).
// Not thread-safe: one StreamDecoder per sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/text/tokenizer.h"

namespace shardlm::text {

class StreamDecoder {
 public:
  explicit StreamDecoder(Tokenizer tokenizer, bool skip_special_tokens = false)
      : tok_(std::move(tokenizer)), skip_special_(skip_special_tokens) {}

  // Adds one id; returns the text it completes (possibly empty).
  std::string put(int32_t id);
  // Returns whatever is still held back (e.g. a trailing incomplete character, as U+FFFD).
  std::string flush();
  // Forgets all state (new sequence).
  void reset();

 private:
  Tokenizer tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // window: ids_[0 .. prefix_index_) are context already emitted
  size_t prefix_index_ = 0;
  std::string prefix_;  // decode(ids_[0 .. prefix_index_)) ... see put()
};

}  // namespace shardlm::text
