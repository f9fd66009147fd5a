// Chat templates from the shared test data (Qwen3 current and earlier, Qwen2.5, Mistral,
// TinyLlama/Zephyr) and the Llama-2 chat template, rendered exactly as transformers'
// apply_chat_template does: references in tests/fixtures/text/chat_cases.json.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "runtime/core/status.h"
#include "runtime/text/chat_template.h"
#include "tests/text/text_test_util.h"

namespace shardlm::text::testing {
namespace {

using OJson = nlohmann::ordered_json;

const OJson& chat_fixtures() {
  static const OJson j = OJson::parse(slurp(fixture("chat_cases.json")));
  return j;
}

std::string template_source(const std::string& name) {
  if (name == "qwen3") return select_chat_template(slurp(testdata("qwen3/tokenizer_config.json")));
  if (name == "qwen3-earlier")
    return select_chat_template(slurp(testdata("qwen3/tokenizer_config.earlier-template.json")));
  if (name == "qwen2.5")
    return select_chat_template(slurp(testdata("qwen2.5/tokenizer_config.json")));
  if (name == "mistral")
    return select_chat_template(slurp(testdata("mistral/tokenizer_config.json")));
  if (name == "tinyllama")
    return select_chat_template(slurp(testdata("tinyllama/tokenizer_config.json")));
  if (name == "llama2") return slurp(fixture("llama2-chat.jinja"));
  throw std::runtime_error("unknown template " + name);
}

const ChatTemplate& named_template(const std::string& name) {
  static std::map<std::string, ChatTemplate> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, ChatTemplate(template_source(name))).first;
  return it->second;
}

class ChatFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatFixture, MatchesApplyChatTemplate) {
  const std::string name = GetParam();
  const ChatTemplate& tpl = named_template(name);
  const OJson& all = chat_fixtures();
  size_t total = 0, pass = 0, errors = 0;
  for (const auto& c : all.at("cases")) {
    if (c.at("template") != name) continue;
    ++total;
    const std::string conv = c.at("conversation");
    OJson extra = c.at("kwargs");
    if (conv == "tools") extra["tools"] = all.at("tools");
    const auto& messages = all.at("conversations").at(conv);
    const bool agp = c.at("add_generation_prompt");
    const std::string what =
        name + "/" + conv + " agp=" + (agp ? "1" : "0") + " " + c.at("kwargs").dump();
    if (c.contains("error")) {
      ++errors;
      try {
        tpl.render(messages, agp, extra, c.at("bos_token"), c.at("eos_token"));
        ADD_FAILURE() << what << ": expected an error like: " << c.at("error");
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), StatusCode::kInvalidArg) << what;
        const std::string want = c.at("error");
        EXPECT_NE(std::string(e.what()).find(want), std::string::npos)
            << what << ": got '" << e.what() << "', want it to contain '" << want << "'";
        if (std::string(e.what()).find(want) != std::string::npos) ++pass;
      }
      continue;
    }
    const std::string want = c.at("expected");
    const std::string got = tpl.render(messages, agp, extra, c.at("bos_token"), c.at("eos_token"));
    EXPECT_EQ(got, want) << what;
    pass += got == want;
  }
  std::cout << "[chat] " << name << ": " << pass << "/" << total << " exact (" << errors
            << " expected-error cases)\n";
  EXPECT_GT(total, 0u);
}

INSTANTIATE_TEST_SUITE_P(All, ChatFixture,
                         ::testing::Values("qwen3", "qwen3-earlier", "qwen2.5", "mistral",
                                           "tinyllama", "llama2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (ch == '.' || ch == '-') ch = '_';
                           return n;
                         });

TEST(ChatTemplateSelect, StringListAndMissing) {
  EXPECT_EQ(select_chat_template(R"({"chat_template": "abc"})"), "abc");
  const std::string list =
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})";
  EXPECT_EQ(select_chat_template(list), "D");
  EXPECT_EQ(select_chat_template(list, "tool_use"), "T");
  EXPECT_EQ(select_chat_template(R"({"bos_token": "<s>"})"), "");
  try {
    select_chat_template(list, "rag");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
  }
  try {
    select_chat_template(R"({"chat_template": 5})");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kFormat);
    EXPECT_NE(std::string(e.what()).find("chat_template"), std::string::npos);
  }
}

// The rendered prompt tokenizes to what HF gives for the same string (end to end, Qwen3).
TEST(ChatTemplateEndToEnd, Qwen3PromptTokenizes) {
  const ChatTemplate& tpl = named_template("qwen3");
  const Tokenizer& tok = named_tokenizer("qwen3");
  OJson messages = OJson::array({{{"role", "user"}, {"content", "Hi"}}});
  const std::string prompt =
      tpl.render(messages, true, {{"enable_thinking", false}}, "", tok.eos_token());
  EXPECT_EQ(prompt,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  const auto ids = tok.encode(prompt);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], tok.token_id("<|im_start|>"));
  EXPECT_EQ(tok.decode(ids), prompt);
}

}  // namespace
}  // namespace shardlm::text::testing
