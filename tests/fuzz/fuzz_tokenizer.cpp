// Fuzz target: a tokenizer.json (and optionally a tokenizer_config.json) loaded as a pack's
// tokenizer is, then used on fuzzed text. Input: tokenizer.json, NUL, text, NUL,
// tokenizer_config.json (missing parts: a fixed sample text, no config). When the tokenizer
// loads, encode (without special tokens) must give ids inside the vocabulary, and decode (of those
// ids and of arbitrary ids read from the text's bytes, unknown ones included) must return
// well-formed UTF-8, and min_tokens(text) (the bound that refuses over-long prompts early) must not
// exceed the count.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "runtime/text/tokenizer.h"
#include "runtime/text/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardlm;
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 3);
  const std::string text =
      parts.size() > 1 ? parts[1] : "Hello, world! def f(x): return x  # ünïcödé 你好";
  const std::string config = parts.size() > 2 ? parts[2] : "";
  fuzz::expect_clear_error([&] {
    const text::Tokenizer tok = text::Tokenizer::from_json(parts[0], config);
    const int32_t n_vocab = tok.vocab_size();
    for (const bool special : {false, true}) {
      const std::vector<int32_t> ids = tok.encode(text, special);
      fuzz::check(tok.min_tokens(text) <= static_cast<int64_t>(ids.size()),
                  "min_tokens " + std::to_string(tok.min_tokens(text)) + " > the " +
                      std::to_string(ids.size()) + " tokens encode gave");
      // (With special tokens the post-processor's ids are whatever tokenizer.json says.)
      if (!special)
        for (const int32_t id : ids)
          fuzz::check(id >= 0 && id < n_vocab, "encode gave id " + std::to_string(id) +
                                                   " outside the vocabulary of " +
                                                   std::to_string(n_vocab));
      fuzz::check(text::utf8_is_valid(tok.decode(ids, special)), "decode gave ill-formed UTF-8");
    }
    // Arbitrary ids: the text's bytes read as int32s (mostly unknown ids: no part holds a NUL)
    // and each byte as an id of its own (ids 1-255: inside any small fuzzed vocabulary).
    std::vector<int32_t> raw(text.size() / 4);
    if (!raw.empty()) std::memcpy(raw.data(), text.data(), raw.size() * 4);
    for (const char c : text) raw.push_back(static_cast<unsigned char>(c));
    for (const int32_t id : raw) {
      (void)tok.id_to_token(id);
      (void)tok.token_to_piece(id);
    }
    fuzz::check(text::utf8_is_valid(tok.decode(raw)),
                "decode of arbitrary ids gave ill-formed UTF-8");
  });
  return 0;
}
