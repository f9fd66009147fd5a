// Pre-tokenizers of HF tokenizer.json ("pre_tokenizer" field): Sequence, Split (regex or
// string, all five delimiter behaviors, invert), ByteLevel, Metaspace, Whitespace,
// WhitespaceSplit, Digits, Punctuation. They cut text segments into the "words" the model
// encodes one by one. Pieces that are added tokens are left alone.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/text/json_util.h"

namespace shardlm::text {

// One piece of the input on its way through the pipeline.
struct Piece {
  std::string text;
  int32_t added_id = -1;  // >= 0: this piece is an added token, encoded as that id
  bool at_start = false;  // the piece begins at offset 0 of the original input
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Rewrites/splits every piece with added_id < 0; drops pieces that become empty.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& path);

// The regexes that HF hard-codes (GPT-2 ByteLevel) and that converters write (Qwen2, Llama-3).
extern const char* const kGpt2Pattern;
extern const char* const kQwen2Pattern;

}  // namespace shardlm::text
