// Fuzz target: fuzzed text through the real tokenizers in tests/data (Qwen3's byte-level BPE
// with NFC, Llama 2's and Mistral's SentencePiece-style BPE with byte fallback); the first byte
// picks the tokenizer, the rest is the text. Properties, beyond "no crash":
//   - ids lie inside the vocabulary and decode gives well-formed UTF-8;
//   - min_tokens(text), the bound used to refuse over-long prompts early, is at most the count;
//   - streaming (StreamDecoder, one id at a time, then flush) gives exactly decode's text: that is
//     what the server and the REPL print;
//   - Qwen3 is lossless: decode(encode(text)) == NFC(text) for well-formed UTF-8 text.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "runtime/text/stream_decoder.h"
#include "runtime/text/tokenizer.h"
#include "runtime/text/unicode_norm.h"
#include "runtime/text/utf8.h"

#ifndef SHARDLM_TESTDATA_DIR
#error "SHARDLM_TESTDATA_DIR must name tests/data"
#endif

namespace {

std::vector<std::unique_ptr<shardlm::text::Tokenizer>> g_tokenizers;  // qwen3, llama2, mistral

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (const char* name : {"qwen3", "llama2", "mistral"})
    g_tokenizers.push_back(
        std::make_unique<shardlm::text::Tokenizer>(shardlm::text::Tokenizer::from_files(
            std::string(SHARDLM_TESTDATA_DIR) + "/tokenizer/" + name)));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardlm;
  if (size == 0) return 0;
  const size_t which = data[0] % g_tokenizers.size();
  const text::Tokenizer& tok = *g_tokenizers[which];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  fuzz::expect_clear_error([&] {
    const std::vector<int32_t> ids = tok.encode(text, /*add_special_tokens=*/data[0] & 0x80);
    for (const int32_t id : ids)
      fuzz::check(id >= 0 && id < tok.vocab_size(),
                  "encode gave id " + std::to_string(id) + " outside the vocabulary");
    fuzz::check(tok.min_tokens(text) <= static_cast<int64_t>(ids.size()),
                "min_tokens " + std::to_string(tok.min_tokens(text)) + " > the " +
                    std::to_string(ids.size()) + " tokens encode gave");
    const std::string decoded = tok.decode(ids);
    fuzz::check(text::utf8_is_valid(decoded), "decode gave ill-formed UTF-8");
    text::StreamDecoder stream(tok);
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.put(id);
    streamed += stream.flush();
    fuzz::check(streamed == decoded, "streamed text differs from decode:\n  streamed: " + streamed +
                                         "\n  decoded:  " + decoded);
    if (which == 0 && !(data[0] & 0x80) && text::utf8_is_valid(text))
      fuzz::check(decoded == text::unicode_normalize(text, text::NormForm::kNFC),
                  "Qwen3 round trip lost text: decode(encode(text)) != NFC(text)");
  });
  return 0;
}
