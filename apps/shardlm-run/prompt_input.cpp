// Id list parsing; the text seam (tokenizer not wired yet).
#include "apps/shardlm-run/prompt_input.h"

#include <cctype>

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

bool text_supported() { return false; }

std::vector<int32_t> encode_prompt(const PackReader&, const std::string&) {
  fail(StatusCode::kUnsupported,
       "--prompt TEXT needs the tokenizer (runtime/text), not wired into shardlm-run yet; "
       "use --prompt-ids");
}

std::string decode_tokens(const PackReader&, const std::vector<int32_t>&) {
  fail(StatusCode::kUnsupported, "decoding ids to text needs the tokenizer (runtime/text)");
}

}  // namespace shardlm
