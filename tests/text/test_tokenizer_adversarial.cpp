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

// min_tokens(), the length bound that refuses over-long prompts before tokenizing, exists for
// the real tokenizers and never exceeds the real count, on the inputs that pack the most bytes
// into one token (runs of one character, whitespace runs) and on random text.
TEST_P(Adversarial, MinTokensIsALowerBound) {
  const Tokenizer& tok = named_tokenizer(GetParam());
  const std::string big(100u << 20, 'a');
  EXPECT_GT(tok.min_tokens(big), 100000) << GetParam() << ": no useful bound for 100 MB";
  std::vector<std::string> texts = {random_bytes(kMB / 4, 3), random_codepoints(kMB / 4, 4)};
  for (const std::string unit :
       {"a", " ", "\n", "-", "=", "\t", "\xE4\xBD\xA0", "K\xCC\x81", "\xE2\x84\xAA"}) {
    std::string s;
    while (s.size() < kMB / 8) s += unit;
    texts.push_back(s);
  }
  for (const std::string& s : texts) {
    const int64_t n = static_cast<int64_t>(tok.encode(s).size());
    EXPECT_LE(tok.min_tokens(s), n) << GetParam() << " on [" << s.substr(0, 12) << "...]";
    EXPECT_GT(tok.min_tokens(s), 0);
  }
}

// Stages that can drop any amount of text leave no bound.
TEST(MinTokens, AbsentWhenAStageCanDropText) {
  const std::string model =
      R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "<unk>": 2}, "merges": [], "unk_token": "<unk>")";
  const auto make = [&](const std::string& rest, const std::string& model_extra = "") {
    return Tokenizer::from_json("{" + model + model_extra + "}" + rest + "}");
  };
  EXPECT_GT(make("").min_tokens("aaaa"), 0);
  EXPECT_EQ(
      make(R"(, "normalizer": {"type": "Strip", "left": true, "right": true})").min_tokens("aaaa"),
      0);
  EXPECT_EQ(
      make(R"(, "normalizer": {"type": "Replace", "pattern": {"String": "a"}, "content": ""})")
          .min_tokens("aaaa"),
      0);
  EXPECT_EQ(make(R"(, "pre_tokenizer": {"type": "Whitespace"})").min_tokens("aaaa"), 0);
  EXPECT_EQ(make("", R"(, "fuse_unk": true)").min_tokens("aaaa"), 0);
  // Replace "aaaa" by "b": four input bytes can become one token.
  const Tokenizer r =
      make(R"(, "normalizer": {"type": "Replace", "pattern": {"String": "aaaa"}, "content": "b"})");
  EXPECT_LE(r.min_tokens(std::string(4000, 'a')),
            static_cast<int64_t>(r.encode(std::string(4000, 'a')).size()));
}

// "<0xAB>" names a raw byte only with two hex digits; "<0xZZ>" is an ordinary vocabulary string
// (before: std::invalid_argument escaped token_to_piece).
TEST(TokenToPiece, ByteTokensNeedTwoHexDigits) {
  const Tokenizer t = Tokenizer::from_json(
      R"({"model": {"type": "BPE", "vocab": {"<0x0A>": 0, "<0xZZ>": 1, "<0x+1>": 2, "a": 3},)"
      R"( "merges": []}})");
  EXPECT_EQ(t.token_to_piece(0), "\n");
  EXPECT_EQ(t.token_to_piece(1), "<0xZZ>");
  EXPECT_EQ(t.token_to_piece(2), "<0x+1>");
  EXPECT_EQ(t.token_to_piece(3), "a");
}

INSTANTIATE_TEST_SUITE_P(All, Adversarial, ::testing::Values("qwen3", "llama2"));

}  // namespace
}  // namespace shardlm::text::testing
