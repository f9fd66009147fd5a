// Id list parsing; text <-> ids with the pack's tokenizer.
#include "apps/common/prompt_input.h"

#include <cctype>
#include <climits>

#ifdef SHARDLM_APP_HAS_TEXT
#include "runtime/text/tokenizer.h"
#endif

#include "runtime/core/status.h"

namespace shardlm {

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  std::string item;
  auto flush = [&] {
    size_t b = 0, e = item.size();
    while (b < e && std::isspace(static_cast<unsigned char>(item[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(item[e - 1]))) --e;
    const std::string s = item.substr(b, e - b);
    item.clear();
    if (s.empty()) return;
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(s, &used);
    } catch (...) {
      used = 0;
    }
    if (used != s.size() || v < 0 || v > INT32_MAX) {
      fail(StatusCode::kInvalidArg, "--prompt-ids: '" + s + "' is not a token id");
    }
    ids.push_back(static_cast<int32_t>(v));
  };
  for (char ch : text) {
    if (ch == ',') {
      flush();
    } else {
      item += ch;
    }
  }
  flush();
  if (ids.empty()) fail(StatusCode::kInvalidArg, "--prompt-ids: no ids given");
  return ids;
}

#ifdef SHARDLM_APP_HAS_TEXT

namespace {
text::Tokenizer pack_tokenizer(const PackReader& pack) {
  if (!pack.has_file("tokenizer.json")) {
    fail(StatusCode::kUnsupported,
         pack.path() + " carries no tokenizer.json (pack the model with it); use --prompt-ids");
  }
  const std::string config =
      pack.has_file("tokenizer_config.json") ? pack.file("tokenizer_config.json") : "";
  return text::Tokenizer::from_json(pack.file("tokenizer.json"), config);
}
}  // namespace

bool text_supported() {
  return true;
}

std::vector<int32_t> encode_prompt(const PackReader& pack, const std::string& text,
                                   bool add_special_tokens) {
  std::vector<int32_t> ids = pack_tokenizer(pack).encode(text, add_special_tokens);
  if (ids.empty()) fail(StatusCode::kInvalidArg, "--prompt: the text encodes to no tokens");
  return ids;
}

std::string decode_tokens(const PackReader& pack, const std::vector<int32_t>& ids) {
  return pack_tokenizer(pack).decode(ids, /*skip_special_tokens=*/false);
}

#else

bool text_supported() {
  return false;
}

std::vector<int32_t> encode_prompt(const PackReader&, const std::string&, bool) {
  fail(StatusCode::kUnsupported,
       "--prompt TEXT needs the tokenizer (runtime/text), not in this build; use --prompt-ids");
}

std::string decode_tokens(const PackReader&, const std::vector<int32_t>&) {
  fail(StatusCode::kUnsupported, "decoding ids to text needs the tokenizer (runtime/text)");
}

#endif

}  // namespace shardlm
