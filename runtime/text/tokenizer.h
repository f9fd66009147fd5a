// shardlm::text::Tokenizer: encodes text to ids and back exactly as Hugging Face `tokenizers`
// (and transformers' fast tokenizers) do, from the *contents* of tokenizer.json (plus optional
// tokenizer_config.json), or of vocab.json + merges.txt (GPT-2/Qwen2 byte-level BPE).
// Supports BPE models (byte-level and SentencePiece-style with byte fallback), the normalizers,
// pre-tokenizers, post-processors and decoders listed in normalizer.h, pre_tokenizer.h,
// post_processor.h and decoder.h, and added/special tokens.
// Not here: chat templates (chat_template.h), streaming (stream_decoder.h), Unigram/WordPiece
// models, truncation/padding, offsets.
//
// Errors: Error(kFormat) naming the field for malformed input, Error(kUnsupported) for valid
// components shardlm does not implement, Error(kInvalidArg) for bad arguments.
// Thread-safety: a Tokenizer is immutable after construction (its word cache is locked);
// all const methods may be called from several threads. Copies share the same data.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shardlm::text {

struct TokenizerImpl;

struct TokenizerOptions {
  // transformers keeps the flags (normalized, lstrip, ...) of tokens already in tokenizer.json
  // and only adds the tokenizer_config.json added_tokens_decoder entries that are new. With
  // this set, the config's flags replace those of tokenizer.json instead: that rebuilds e.g.
  // TinyLlama's tokenizer (normalized=false specials) from the Llama-2 tokenizer.json.
  bool config_overrides_added_tokens = false;
};

class Tokenizer {
 public:
  // tokenizer_json: contents of tokenizer.json. tokenizer_config_json: contents of
  // tokenizer_config.json or empty; when given, new added_tokens_decoder entries are added, it
  // names bos/eos/pad/unk, and add_bos_token/add_eos_token rewrite the post-processor for
  // Llama-family tokenizer classes (as transformers does).
  static Tokenizer from_json(const std::string& tokenizer_json,
                             const std::string& tokenizer_config_json = "",
                             const TokenizerOptions& options = {});
  // vocab.json + merges.txt contents (byte-level BPE). With tokenizer_class "Qwen2Tokenizer" the
  // Qwen2 split regex and NFC are used (as transformers' Qwen2 converter does), otherwise GPT-2's.
  static Tokenizer from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                     const std::string& tokenizer_config_json = "");
  // Convenience: reads dir/tokenizer.json (or dir/vocab.json + dir/merges.txt) and
  // dir/tokenizer_config.json when present. Error(kIo) when nothing usable is there.
  static Tokenizer from_files(const std::string& dir);

  // Text to ids. Input that is not well-formed UTF-8 is repaired first (each ill-formed
  // subsequence becomes U+FFFD). add_special_tokens applies the post-processor (BOS, ...).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;

  // Ids to text, through the declared decoder. Unknown ids are skipped (as HF does).
  // skip_special_tokens drops added tokens marked special. Always well-formed UTF-8.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  // The vocabulary string of an id ("Ġhello", "▁the", "<0x0A>", "<|im_end|>"); empty if none.
  std::string id_to_token(int32_t id) const;
  // The bytes an id stands for ("Ġhello" -> " hello", "<0x0A>" -> "\n"); may be part of a
  // UTF-8 character. Use StreamDecoder to print generated text.
  std::string token_to_piece(int32_t id) const;
  // Id of a vocabulary or added-token string, or -1.
  int32_t token_id(std::string_view token) const;

  // A lower bound on encode(text).size() from the text's length alone (0 when this tokenizer's
  // stages allow no bound: token_bound.h). Cheap: lets a caller refuse a text far beyond the
  // context without tokenizing all of it.
  int64_t min_tokens(std::string_view text) const;

  // Highest id + 1 over the model vocabulary and the added tokens.
  int32_t vocab_size() const;
  // Ids of the tokens named by tokenizer_config.json (or -1).
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  // Their strings ("" when none): what chat templates get as bos_token / eos_token.
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  // True for added tokens marked special.
  bool is_special(int32_t id) const;
  // All added-token ids marked special, ascending.
  std::vector<int32_t> special_ids() const;
  // Ids encode() adds before/after the text when add_special_tokens is true.
  const std::vector<int32_t>& prefix_ids() const;
  const std::vector<int32_t>& suffix_ids() const;

 private:
  explicit Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const TokenizerImpl> impl_;
};

}  // namespace shardlm::text
