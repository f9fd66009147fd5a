// Streaming detokenization: feeding ids one at a time yields well-formed UTF-8 chunks whose
// concatenation equals decode() of all ids, for every fixture string and tokenizer.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/text/stream_decoder.h"
#include "runtime/text/utf8.h"
#include "tests/text/text_test_util.h"

namespace shardlm::text::testing {
namespace {

class Stream : public ::testing::TestWithParam<std::string> {};

TEST_P(Stream, ChunksAreWellFormedAndConcatenateToDecode) {
  const std::string name = GetParam();
  const Tokenizer& tok = named_tokenizer(name);
  const auto j = nlohmann::json::parse(slurp(fixture("tokenizer_cases.json")));
  size_t held_back = 0;
  for (const auto& c : j.at("tokenizers_cases").at(name).at("cases")) {
    const std::string text = c.at("text");
    for (bool skip : {false, true}) {
      const auto ids = tok.encode(text, true);
      StreamDecoder sd(tok, skip);
      std::string all;
      for (int32_t id : ids) {
        const std::string chunk = sd.put(id);
        EXPECT_TRUE(utf8_is_valid(chunk)) << name << " [" << text << "]";
        held_back += chunk.empty();
        all += chunk;
      }
      all += sd.flush();
      EXPECT_EQ(all, tok.decode(ids, skip)) << name << " skip=" << skip << " [" << text << "]";
    }
  }
  EXPECT_GT(held_back, 0u);  // some ids complete no text on their own (partial characters)
}

INSTANTIATE_TEST_SUITE_P(All, Stream, ::testing::Values("qwen3", "llama2", "mistral"));

TEST(Stream, EmojiSplitAcrossByteTokensIsHeldBack) {
  const Tokenizer& tok = named_tokenizer("llama2");
  const std::string text = "ok \xF0\x9F\x98\x80!";  // the emoji is byte-fallback tokens
  const auto ids = tok.encode(text);
  StreamDecoder sd(tok);
  std::vector<std::string> chunks;
  for (int32_t id : ids) chunks.push_back(sd.put(id));
  std::string all;
  for (const auto& c : chunks) all += c;
  all += sd.flush();
  EXPECT_EQ(all, text);
  // "ok", " ", then three byte tokens emit nothing, the fourth emits the whole emoji.
  size_t empty = 0;
  for (const auto& c : chunks) empty += c.empty();
  EXPECT_GE(empty, 3u);
  EXPECT_NE(std::find(chunks.begin(), chunks.end(), "\xF0\x9F\x98\x80"), chunks.end());
}

TEST(Stream, FlushEmitsIncompleteTailAsReplacement) {
  const Tokenizer& tok = named_tokenizer("llama2");
  StreamDecoder sd(tok);
  EXPECT_EQ(sd.put(tok.token_id("<0xF0>")), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace shardlm::text::testing
