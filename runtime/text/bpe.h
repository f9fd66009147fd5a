// The BPE model of HF tokenizer.json ("model": {"type": "BPE"}): vocab, ranked merges, unk,
// byte fallback (<0xXX> pieces), fuse_unk, ignore_merges, continuing_subword_prefix and
// end_of_word_suffix. Encodes one pre-tokenized word with the same priority-queue merge order as
// HF tokenizers (lowest rank first, leftmost on ties): O(n log n) in the word length, so a 1 MB
// word is fine. Dropout is not supported (it is not deterministic).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/text/json_util.h"

namespace shardlm::text {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // From the "model" object of tokenizer.json; path names it in errors.
  BpeModel(const Json& model, const std::string& path);
  // From vocab.json contents (parsed) and merges.txt contents (a leading "#version" line is
  // skipped).
  BpeModel(const Json& vocab, const std::string& merges_txt, const std::string& path);

  // Appends the ids of one word.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const;  // -1 when absent
  const std::string* id_to_token(int32_t id) const;   // nullptr when absent
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  bool byte_fallback() const { return byte_fallback_; }
  // Bytes of the longest vocabulary string (no token stands for more input bytes than its
  // string has: byte-level and "▁" spellings are at least as long as what they stand for).
  size_t longest_token_bytes() const;
  // True when runs of unknown characters can fuse into one unk token (then no bound holds); not
  // with byte fallback over all 256 byte tokens, which leaves nothing unknown.
  bool fuses_unknown() const;
  // True when a character the vocabulary lacks can vanish from the output: no unk token and no
  // full byte fallback (HF's BPE then drops it), unless every byte-level character is in the
  // vocabulary and `byte_level_input` (a ByteLevel pre-tokenizer maps all input to them).
  bool may_drop_unknown(bool byte_level_input) const;

 private:
  void read_vocab(const Json& vocab, const std::string& path);
  void add_merge(std::string_view a, std::string_view b, uint32_t rank, const std::string& where);
  void finish();
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  VocabMap vocab_;
  std::vector<std::string> id_to_token_;
  // (left id << 32 | right id) -> (rank << 32 | merged id)
  std::unordered_map<uint64_t, uint64_t> merges_;
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::string prefix_, suffix_;
  int32_t byte_ids_[256];

  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace shardlm::text
