// Adversarial inputs: 1 MB of one repeated character and 1 MB of random bytes (and random code
// points) encode without crashing and decode back to the (UTF-8-repaired) input. Timing is not
// asserted here: apps/text-bench measures it.
#include <gtest/gtest.h>

#include <random>

#include "runtime/text/unicode_norm.h"
#include "runtime/text/utf8.h"
#include "tests/text/text_test_util.h"

namespace shardlm::text::testing {
namespace {

constexpr size_t kMB = 1 << 20;

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string random_codepoints(size_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < bytes) {
    uint32_t cp = rng() % 0x30000;
    if (cp >= 0xD800 && cp < 0xE000) continue;
    utf8_append(s, cp);
  }
  return s;
}

class Adversarial : public ::testing::TestWithParam<std::string> {};

TEST_P(Adversarial, RepeatedCharacters) {
  const Tokenizer& tok = named_tokenizer(GetParam());
  for (const std::string unit : {"a", " ", "\n", "\xE4\xBD\xA0" /*你*/, "\xF0\x9F\x98\x80" /*😀*/}) {
    std::string s;
    s.reserve(kMB + 4);
    while (s.size() < kMB) s += unit;
    const auto ids = tok.encode(s);
    EXPECT_FALSE(ids.empty());
    EXPECT_LE(ids.size(), s.size() + 1);  // at most one id per byte, plus a leading "▁"
    const std::string back = tok.decode(ids);
    EXPECT_TRUE(back == s) << GetParam() << " unit [" << unit << "]: decoded " << back.size()
                           << " bytes of " << s.size() << ", first 40: [" << back.substr(0, 40)
                           << "]";
  }
}

TEST_P(Adversarial, RandomBytes) {
  const Tokenizer& tok = named_tokenizer(GetParam());
  const std::string raw = random_bytes(kMB, 42);
  const std::string repaired = utf8_sanitize(raw);
  ASSERT_TRUE(utf8_is_valid(repaired));
  const auto ids = tok.encode(raw);
  EXPECT_FALSE(ids.empty());
  for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
  // Decoding gives the input back after U+FFFD repair (and NFC, for tokenizers that declare it).
  const std::string want =
      GetParam() == "qwen3" ? unicode_normalize(repaired, NormForm::kNFC) : repaired;
  const std::string back = tok.decode(ids);
  EXPECT_TRUE(back == want) << GetParam() << ": decoded " << back.size() << " bytes, want "
                            << want.size();
}

TEST_P(Adversarial, RandomCodepoints) {
  const Tokenizer& tok = named_tokenizer(GetParam());
  const std::string s = random_codepoints(kMB / 4, 7);
  const auto ids = tok.encode(s);
  const std::string back = tok.decode(ids);
  // Byte-level tokenizers apply NFC (qwen) and SentencePiece-style ones do not normalize
  // Unicode, so compare against the encoder's own view: encoding the decoded text is stable.
  EXPECT_EQ(tok.encode(back), ids) << GetParam();
  EXPECT_TRUE(utf8_is_valid(back));
}

INSTANTIATE_TEST_SUITE_P(All, Adversarial, ::testing::Values("qwen3", "llama2"));

}  // namespace
}  // namespace shardlm::text::testing
