// Encode/decode of tricky strings (CJK, emoji, code, whitespace runs, special tokens inside
// text, combining marks, control characters) against HF transformers/tokenizers references in
// tests/fixtures/text/tokenizer_cases.json (made by tools/text/make_text_fixtures.py).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "tests/text/text_test_util.h"

namespace shardlm::text::testing {
namespace {

const nlohmann::json& fixtures() {
  static const nlohmann::json j = nlohmann::json::parse(slurp(fixture("tokenizer_cases.json")));
  return j;
}

class TokenizerFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerFixture, MatchesHuggingFace) {
  const std::string name = GetParam();
  const Tokenizer& tok = named_tokenizer(name);
  const auto& cases = fixtures().at("tokenizers_cases").at(name).at("cases");
  ASSERT_GT(cases.size(), 20u);
  size_t enc_ok = 0, dec_ok = 0;
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    const auto want = c.at("ids").get<std::vector<int32_t>>();
    const auto want_sp = c.at("ids_with_special").get<std::vector<int32_t>>();
    const auto got = tok.encode(text, false);
    const auto got_sp = tok.encode(text, true);
    EXPECT_EQ(got, want) << name << " encode [" << text << "]";
    EXPECT_EQ(got_sp, want_sp) << name << " encode+special [" << text << "]";
    enc_ok += got == want && got_sp == want_sp;
    const std::string dec = tok.decode(want, false), dec_skip = tok.decode(want, true);
    EXPECT_EQ(dec, c.at("decoded").get<std::string>()) << name << " decode [" << text << "]";
    EXPECT_EQ(dec_skip, c.at("decoded_skip_special").get<std::string>())
        << name << " decode skip_special [" << text << "]";
    dec_ok += dec == c.at("decoded").get<std::string>() &&
              dec_skip == c.at("decoded_skip_special").get<std::string>();
  }
  std::cout << "[fixtures] " << name << ": encode " << enc_ok << "/" << cases.size() << ", decode "
            << dec_ok << "/" << cases.size() << "\n";
}

INSTANTIATE_TEST_SUITE_P(All, TokenizerFixture,
                         ::testing::Values("qwen3", "qwen2.5", "llama2", "tinyllama", "mistral"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (ch == '.') ch = '_';
                           return n;
                         });

TEST(TokenizerLookups, SpecialIds) {
  const Tokenizer& q = named_tokenizer("qwen3");
  EXPECT_EQ(q.vocab_size(), 151669);
  EXPECT_EQ(q.eos_id(), 151645);
  EXPECT_EQ(q.eos_token(), "<|im_end|>");
  EXPECT_EQ(q.bos_id(), -1);
  EXPECT_EQ(q.pad_id(), 151643);
  EXPECT_EQ(q.token_id("<|im_start|>"), 151644);
  EXPECT_EQ(q.token_id("<think>"), 151667);
  EXPECT_TRUE(q.is_special(151644));
  EXPECT_FALSE(q.is_special(151667));
  EXPECT_EQ(q.id_to_token(9707), "Hello");
  EXPECT_EQ(q.token_to_piece(q.encode(" world")[0]), " world");
  EXPECT_TRUE(q.prefix_ids().empty());

  const Tokenizer& l = named_tokenizer("llama2");
  EXPECT_EQ(l.vocab_size(), 32000);
  EXPECT_EQ(l.bos_id(), 1);
  EXPECT_EQ(l.eos_id(), 2);
  EXPECT_EQ(l.unk_id(), 0);
  EXPECT_EQ(l.bos_token(), "<s>");
  EXPECT_EQ(l.prefix_ids(), std::vector<int32_t>{1});
  EXPECT_EQ(l.token_to_piece(l.token_id("<0x0A>")), "\n");
  EXPECT_EQ(l.token_to_piece(l.token_id("\xE2\x96\x81the")), " the");
  EXPECT_EQ(l.token_id("no-such-token"), -1);
  EXPECT_EQ(l.special_ids(), (std::vector<int32_t>{0, 1, 2}));
}

}  // namespace
}  // namespace shardlm::text::testing

namespace shardlm::text::testing {
namespace {

// Pipeline variants (Metaspace, GPT-2 ByteLevel regex with add_prefix_space, every Split
// behavior, Strip/NFKC/NFD normalizers, Strip decoder, TemplateProcessing with an EOS) made by
// replacing fields of a testdata tokenizer.json, against tokenizers.Tokenizer on the same JSON
// (tests/fixtures/text/variant_cases.json).
TEST(TokenizerVariants, MatchTokenizersLibrary) {
  const auto j = nlohmann::json::parse(slurp(fixture("variant_cases.json")));
  std::map<std::string, nlohmann::json> bases;
  for (const auto& [name, v] : j.at("variants").items()) {
    const std::string base = v.at("base");
    if (!bases.count(base)) bases[base] = nlohmann::json::parse(slurp(testdata(base)));
    nlohmann::json tj = bases[base];
    for (const auto& [field, value] : v.at("patch").items()) tj[field] = value;
    const Tokenizer tok = Tokenizer::from_json(tj.dump());
    size_t pass = 0;
    for (const auto& c : v.at("cases")) {
      const std::string text = c.at("text");
      const auto ids = tok.encode(text, false);
      const auto ids_sp = tok.encode(text, true);
      const auto want = c.at("ids").get<std::vector<int32_t>>();
      EXPECT_EQ(ids, want) << name << " [" << text << "]";
      EXPECT_EQ(ids_sp, c.at("ids_with_special").get<std::vector<int32_t>>())
          << name << " special [" << text << "]";
      const std::string dec = tok.decode(want, false), dec_skip = tok.decode(want, true);
      EXPECT_EQ(dec, c.at("decoded").get<std::string>()) << name << " decode [" << text << "]";
      EXPECT_EQ(dec_skip, c.at("decoded_skip_special").get<std::string>())
          << name << " decode skip [" << text << "]";
      pass += ids == want && dec == c.at("decoded").get<std::string>() &&
              dec_skip == c.at("decoded_skip_special").get<std::string>();
    }
    std::cout << "[variants] " << name << ": " << pass << "/" << v.at("cases").size() << "\n";
  }
}

}  // namespace
}  // namespace shardlm::text::testing
