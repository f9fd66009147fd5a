// llama.cpp tokenizer vectors (tests/data/tokenizer/llamacpp) and the mistral-common v1 chat
// encoding, against the tokenizers that produced them (see tests/data/tokenizer/SOURCES.md).
// llama-bpe is not tested: its tokenizer (Meta-Llama-3-8B) is not in the test data.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/text/text_test_util.h"

namespace shardlm::text::testing {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> load_vectors(const std::string& stem) {
  const std::string inp = slurp(testdata("llamacpp/" + stem + ".inp"));
  const std::string out = slurp(testdata("llamacpp/" + stem + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  size_t pos = 0;
  while (true) {
    const size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) break;
    cases.push_back({inp.substr(pos, hit - pos), {}});
    pos = hit + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t k = 0;
  while (std::getline(lines, line)) {
    if (k >= cases.size()) ADD_FAILURE() << stem << ": more .out lines than cases";
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[k].ids.push_back(id);
    ++k;
  }
  EXPECT_EQ(k, cases.size()) << stem << ": .out line count";
  return cases;
}

void check_file(const std::string& stem, const std::string& tokenizer, size_t expect_cases) {
  const Tokenizer& tok = named_tokenizer(tokenizer);
  const auto cases = load_vectors(stem);
  ASSERT_EQ(cases.size(), expect_cases);
  size_t pass = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto got = tok.encode(cases[i].text, /*add_special_tokens=*/false);
    if (got == cases[i].ids) {
      ++pass;
    } else {
      ADD_FAILURE() << stem << " case " << i << " text [" << cases[i].text << "]: got "
                    << ::testing::PrintToString(got) << " want "
                    << ::testing::PrintToString(cases[i].ids);
    }
  }
  std::cout << "[vectors] " << stem << " with " << tokenizer << ": " << pass << "/" << cases.size()
            << " exact\n";
  EXPECT_EQ(pass, cases.size());
}

TEST(TokenizerVectors, Qwen2WithQwen3TokenizerJson) {
  check_file("ggml-vocab-qwen2.gguf", "qwen3", 46);
}
TEST(TokenizerVectors, Qwen2WithQwen25VocabMerges) {
  check_file("ggml-vocab-qwen2.gguf", "qwen2.5", 46);
}
TEST(TokenizerVectors, LlamaSpmWithLlama2) {
  check_file("ggml-vocab-llama-spm.gguf", "llama2", 46);
}
TEST(TokenizerVectors, TinyLlama) {
  check_file("ggml-vocab-tinyllama.gguf", "tinyllama", 11);
}

// mistral-common's encode_chat_completion for tokenizer v1:
// [BOS] + enc("[INST] " + user + " [/INST]") + enc(assistant) + [EOS] + ..., each segment
// encoded on its own with the SentencePiece dummy prefix.
TEST(TokenizerVectors, MistralCommonV1Chat) {
  const Tokenizer& tok = named_tokenizer("mistral");
  const auto sample =
      nlohmann::json::parse(slurp(testdata("mistral/mistral-common-v1/sample.json")));
  const auto want =
      nlohmann::json::parse(slurp(testdata("mistral/mistral-common-v1/tokens_v1.json")))
          .at("tokens")
          .get<std::vector<int32_t>>();
  std::vector<int32_t> got{tok.bos_id()};
  for (const auto& m : sample.at("messages")) {
    const std::string role = m.at("role"), content = m.at("content");
    std::vector<int32_t> seg;
    if (role == "user") {
      seg = tok.encode("[INST] " + content + " [/INST]");
    } else {
      seg = tok.encode(content);
      seg.push_back(tok.eos_id());
    }
    got.insert(got.end(), seg.begin(), seg.end());
  }
  EXPECT_EQ(got, want);
  std::cout << "[vectors] mistral-common-v1 tokens_v1.json: " << (got == want ? want.size() : 0)
            << "/" << want.size() << " ids exact\n";
  // The piece string mistral-common records: pieces joined (with ▁).
  std::string pieces;
  for (int32_t id : got) pieces += tok.id_to_token(id);
  std::string text = slurp(testdata("mistral/mistral-common-v1/text_v1.txt"));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  EXPECT_EQ(pieces, text);
}

}  // namespace
}  // namespace shardlm::text::testing
