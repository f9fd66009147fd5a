// Malformed tokenizer files: every failure is a shardlm::Error with the right code and a
// message naming the file and the field.
#include <gtest/gtest.h>

#include <functional>

#include "runtime/core/status.h"
#include "runtime/text/tokenizer.h"
#include "tests/text/text_test_util.h"

namespace shardlm::text::testing {
namespace {

// A minimal valid byte-level-free BPE tokenizer.json, with `patch` spliced in.
std::string tiny(const std::string& model, const std::string& rest = "") {
  return R"({"version": "1.0", "model": )" + model + rest + "}";
}
const char* kModel =
    R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<unk>": 3}, "merges": ["a b"], "unk_token": "<unk>"})";

void expect_error(const std::function<void()>& fn, StatusCode code,
                  std::vector<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "no error; wanted one mentioning " << needles[0];
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
  }
}

TEST(TokenizerErrors, TinyValidTokenizerWorks) {
  const Tokenizer t = Tokenizer::from_json(tiny(kModel));
  EXPECT_EQ(t.encode("abab"), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(t.vocab_size(), 4);
}

TEST(TokenizerErrors, MalformedTokenizerJsonNamesTheField) {
  const auto J = [](const std::string& s) { return [s] { Tokenizer::from_json(s); }; };
  expect_error(J("{not json"), StatusCode::kFormat, {"tokenizer.json", "not valid JSON"});
  expect_error(J("[1, 2]"), StatusCode::kFormat, {"tokenizer.json", "expected an object"});
  expect_error(J(R"({"version": "1.0"})"), StatusCode::kFormat,
               {"tokenizer.json", "model", "missing"});
  expect_error(J(tiny(R"({"type": "BPE", "vocab": [1], "merges": []})")), StatusCode::kFormat,
               {"model.vocab"});
  expect_error(J(tiny(R"({"type": "BPE", "vocab": {"a": "x"}, "merges": []})")),
               StatusCode::kFormat, {"model.vocab", "\"a\""});
  expect_error(J(tiny(R"({"type": "BPE", "vocab": {"a": 0}})")), StatusCode::kFormat,
               {"model.merges", "missing"});
  expect_error(J(tiny(R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a z"]})")),
               StatusCode::kFormat, {"model.merges[0]", "not in the vocab"});
  expect_error(J(tiny(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [5]})")), StatusCode::kFormat,
               {"model.merges[0]"});
  expect_error(J(tiny(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<u>"})")),
               StatusCode::kFormat, {"model.unk_token"});
  expect_error(J(tiny(R"({"type": "Unigram", "vocab": []})")), StatusCode::kUnsupported,
               {"model.type", "Unigram"});
  expect_error(J(tiny(kModel, R"(, "normalizer": {"type": "Precompiled"})")),
               StatusCode::kUnsupported, {"normalizer", "Precompiled"});
  expect_error(J(tiny(kModel, R"(, "normalizer": {"kind": "NFC"})")), StatusCode::kFormat,
               {"normalizer.type", "missing"});
  expect_error(
      J(tiny(
          kModel,
          R"(, "normalizer": {"type": "Sequence", "normalizers": [{"type": "Replace", "pattern": 3, "content": ""}]})")),
      StatusCode::kFormat, {"normalizer.normalizers[0].pattern"});
  expect_error(
      J(tiny(
          kModel,
          R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})")),
      StatusCode::kFormat, {"pre_tokenizer.pattern", "regex"});
  expect_error(
      J(tiny(
          kModel,
          R"(, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"})")),
      StatusCode::kFormat, {"pre_tokenizer.behavior", "Sideways"});
  expect_error(J(tiny(kModel, R"(, "decoder": {"type": "Strip", "start": 1})")),
               StatusCode::kFormat, {"decoder.content"});
  expect_error(
      J(tiny(
          kModel,
          R"(, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}})")),
      StatusCode::kFormat, {"post_processor.special_tokens", "<s>"});
  expect_error(J(tiny(kModel, R"(, "added_tokens": [{"id": 9}])")), StatusCode::kFormat,
               {"added_tokens[0].content"});
  expect_error(J(tiny(kModel, R"(, "added_tokens": [{"content": "x"}])")), StatusCode::kFormat,
               {"added_tokens[0].id"});
  expect_error(
      J(tiny(kModel, R"(, "added_tokens": [{"id": 4, "content": "x", "special": "yes"}])")),
      StatusCode::kFormat, {"added_tokens[0].special", "boolean"});
}

// Found by fuzz_tokenizer (an out-of-memory at 1.5M executions): the id -> token table is dense,
// so one id far past the entries would size it in gigabytes. Ids near INT32_MAX in added tokens
// would overflow vocab_size().
TEST(TokenizerErrors, IdsFarPastTheVocabularyAreRefused) {
  const auto J = [](const std::string& s) { return [s] { Tokenizer::from_json(s); }; };
  expect_error(J(tiny(R"({"type": "BPE", "vocab": {"a": 0, "b": 132760000}, "merges": []})")),
               StatusCode::kFormat, {"model.vocab", "132760000", "far past", "2 entries"});
  // A gap of a few ids (as some vocabularies have) still loads.
  EXPECT_EQ(Tokenizer::from_json(tiny(R"({"type": "BPE", "vocab": {"a": 0, "b": 7}, "merges": []})"))
                .vocab_size(),
            8);
  expect_error(J(tiny(kModel, R"(, "added_tokens": [{"id": 2147483647, "content": "x"}])")),
               StatusCode::kFormat, {"added_tokens[0].id"});
}

TEST(TokenizerErrors, MalformedConfigAndVocabFiles) {
  expect_error([] { Tokenizer::from_json(tiny(kModel), "{oops"); }, StatusCode::kFormat,
               {"tokenizer_config.json", "not valid JSON"});
  expect_error(
      [] {
        Tokenizer::from_json(tiny(kModel), R"({"added_tokens_decoder": {"x": {"content": "y"}}})");
      },
      StatusCode::kFormat, {"added_tokens_decoder[\"x\"]", "token id"});
  expect_error([] { Tokenizer::from_json(tiny(kModel), R"({"bos_token": 5})"); },
               StatusCode::kFormat, {"bos_token"});
  expect_error(
      [] {
        Tokenizer::from_json(tiny(kModel),
                             R"({"tokenizer_class": "LlamaTokenizer", "add_bos_token": true})");
      },
      StatusCode::kFormat, {"add_bos_token", "bos_token"});
  expect_error([] { Tokenizer::from_vocab_merges(R"({"a": 0, "b": 1})", "#version: 0.2\na b\n"); },
               StatusCode::kFormat, {"merges.txt line 2"});
  expect_error([] { Tokenizer::from_vocab_merges(R"({"a": 0, "b": 1})", "ab\n"); },
               StatusCode::kFormat, {"merges.txt line 1"});
  expect_error([] { Tokenizer::from_vocab_merges("[]", ""); }, StatusCode::kFormat, {"vocab.json"});
  expect_error([] { Tokenizer::from_files("/nonexistent/dir"); }, StatusCode::kIo,
               {"/nonexistent/dir"});
}

TEST(TokenizerErrors, TruncatedRealFile) {
  const std::string full = slurp(testdata("mistral/tokenizer.json"));
  expect_error([&] { Tokenizer::from_json(full.substr(0, full.size() / 2)); }, StatusCode::kFormat,
               {"tokenizer.json", "not valid JSON"});
}

TEST(TokenizerErrors, FromFilesLoadsTestData) {
  const Tokenizer t = Tokenizer::from_files(testdata("qwen2.5"));
  EXPECT_EQ(t.encode("Hello world"), (std::vector<int32_t>{9707, 1879}));
  EXPECT_EQ(t.eos_id(), 151645);
}

}  // namespace
}  // namespace shardlm::text::testing
