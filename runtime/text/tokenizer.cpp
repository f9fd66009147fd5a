// Tokenizer encode/decode and lookups (see tokenizer.h). Construction is in tokenizer_load.cpp.
#include "runtime/text/tokenizer.h"

#include <algorithm>

#include "runtime/core/status.h"
#include "runtime/text/byte_level.h"
#include "runtime/text/decoder.h"
#include "runtime/text/tokenizer_impl.h"
#include "runtime/text/utf8.h"

namespace shardlm::text {

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const TokenizerImpl& t = *impl_;
  std::vector<Piece> pieces;
  pieces.push_back({utf8_sanitize(text), -1, true});
  t.raw_matcher.split(pieces);
  if (t.normalizer) {
    for (auto& p : pieces)
      if (p.added_id < 0) t.normalizer->normalize(p.text);
  }
  t.normalized_matcher.split(pieces);
  // Empty segments never reach the pre-tokenizer (HF drops empty splits): "" stays "" even
  // with Metaspace or ByteLevel(add_prefix_space).
  std::erase_if(pieces, [](const Piece& p) { return p.added_id < 0 && p.text.empty(); });
  if (t.pre_tokenizer) t.pre_tokenizer->pre_tokenize(pieces);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const auto& p : pieces) {
    if (p.added_id >= 0) {
      ids.push_back(p.added_id);
    } else {
      t.model->encode_word(p.text, ids);
    }
  }
  return add_special_tokens ? t.post.apply(ids) : ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const TokenizerImpl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = t.added_by_id.find(id);
    if (it != t.added_by_id.end()) {
      const AddedToken& a = t.added[it->second];
      if (skip_special_tokens && a.special) continue;
      tokens.push_back(a.content);
      continue;
    }
    const std::string* tok = t.model->id_to_token(id);
    if (tok) tokens.push_back(*tok);
  }
  std::string out;
  if (t.decoder) {
    t.decoder->decode_chain(tokens);
    for (const auto& s : tokens) out += s;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
  }
  out = utf8_sanitize(out);
  if (t.clean_up_spaces) {
    static const char* const kPairs[][2] = {
        {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& p : kPairs) out = replace_all(out, p[0], p[1]);
  }
  return out;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  const std::string* tok = impl_->model->id_to_token(id);
  return tok ? *tok : std::string();
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  const std::string* tok = impl_->model->id_to_token(id);
  if (!tok) return std::string();
  if (impl_->byte_level_decoder) return byte_level_decode(*tok);
  if (const int byte = parse_byte_token(*tok); byte >= 0)
    return std::string(1, static_cast<char>(byte));
  return replace_all(*tok, "\xE2\x96\x81", " ");
}

int32_t Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->added_by_content.find(token);
  if (it != impl_->added_by_content.end()) return it->second;
  return impl_->model->token_to_id(token);
}

int64_t Tokenizer::min_tokens(std::string_view text) const {
  const size_t per_token = impl_->max_input_bytes_per_token;
  return per_token == 0 ? 0 : static_cast<int64_t>((text.size() + per_token - 1) / per_token);
}

int32_t Tokenizer::vocab_size() const {
  int32_t n = impl_->model->max_id() + 1;
  for (const auto& a : impl_->added) n = std::max(n, a.id + 1);
  return n;
}

int32_t Tokenizer::bos_id() const {
  return impl_->bos;
}
int32_t Tokenizer::eos_id() const {
  return impl_->eos;
}
int32_t Tokenizer::pad_id() const {
  return impl_->pad;
}
int32_t Tokenizer::unk_id() const {
  return impl_->unk;
}
const std::string& Tokenizer::bos_token() const {
  return impl_->bos_token;
}
const std::string& Tokenizer::eos_token() const {
  return impl_->eos_token;
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

std::vector<int32_t> Tokenizer::special_ids() const {
  std::vector<int32_t> out;
  for (const auto& a : impl_->added)
    if (a.special) out.push_back(a.id);
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<int32_t>& Tokenizer::prefix_ids() const {
  return impl_->post.prefix();
}
const std::vector<int32_t>& Tokenizer::suffix_ids() const {
  return impl_->post.suffix();
}

}  // namespace shardlm::text
