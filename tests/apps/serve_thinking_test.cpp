// shardlm-serve with the real Qwen3 chat template: `chat_template_kwargs.enable_thinking` (as vLLM
// accepts it) reaches the template. The server runs in this process over the C ABI tests' fixture
// pack (a tiny random Qwen3 with the real Qwen3 tokenizer and tokenizer_config.json, packed by
// api_make_chat_pack). The expected prompts are written out here from Qwen3's template, not
// rendered by the code under test; usage.prompt_tokens must equal their token counts.
#include <httplib.h>

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "apps/shardlm-serve/server.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/model_text.h"
#include "runtime/engine/serving_loop.h"

namespace shardlm {
namespace {

using Json = nlohmann::json;

class ServeThinkingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);
    EngineOptions eo;
    eo.pack_dir = SHARDLM_API_FIXTURE_DIR "/tp1";
    eo.n_threads = 2;
    eo.n_ctx = 256;
    eo.max_batch_tokens = 64;
    eo.default_sequence = false;
    eo.kv_blocks = 4 * (256 / 16);
    engine_ = new Engine(eo);
    StepEngineOptions so;
    so.max_seqs = 4;
    loop_ = new std::shared_ptr<ServingLoop>(
        std::make_shared<ServingLoop>(std::shared_ptr<Engine>(engine_, [](Engine*) {}), so));
    text_ = new std::shared_ptr<const ModelText>(ModelText::load(engine_->pack(0)));
    serve::ServerOptions opt;
    opt.host = "127.0.0.1";
    opt.port = 0;
    opt.access_log = false;
    opt.shutdown_seconds = 2;
    server_ = new serve::Server(opt);
    port_ = server_->bind();
    thread_ = new std::thread([] { server_->serve(); });
    server_->set_model(*loop_, *text_, "qwen3-tiny");
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
    delete text_;
    delete loop_;
    delete engine_;
  }

  static Json chat(const Json& extra) {
    Json body = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                 {"max_tokens", 2},
                 {"temperature", 0}};
    if (extra.is_object()) body.update(extra);
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return Json();
    EXPECT_EQ(r->status, 200) << r->body;
    return Json::parse(r->body);
  }
  static int64_t tokens(const std::string& s) {
    return static_cast<int64_t>((*text_)->tokenizer().encode(s, false).size());
  }

  static Engine* engine_;
  static std::shared_ptr<ServingLoop>* loop_;
  static std::shared_ptr<const ModelText>* text_;
  static serve::Server* server_;
  static std::thread* thread_;
  static int port_;
};

Engine* ServeThinkingTest::engine_ = nullptr;
std::shared_ptr<ServingLoop>* ServeThinkingTest::loop_ = nullptr;
std::shared_ptr<const ModelText>* ServeThinkingTest::text_ = nullptr;
serve::Server* ServeThinkingTest::server_ = nullptr;
std::thread* ServeThinkingTest::thread_ = nullptr;
int ServeThinkingTest::port_ = 0;

// Qwen3's template: the generation prompt, and with enable_thinking=false an empty think block.
const std::string kThinking = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
const std::string kNoThinking = kThinking + "<think>\n\n</think>\n\n";

TEST_F(ServeThinkingTest, EnableThinkingFalseAddsTheEmptyThinkBlock) {
  ASSERT_GT(tokens(kNoThinking), tokens(kThinking));
  EXPECT_EQ(chat(Json::object())["usage"]["prompt_tokens"], tokens(kThinking));
  EXPECT_EQ(chat({{"chat_template_kwargs", {{"enable_thinking", true}}}})["usage"]["prompt_tokens"],
            tokens(kThinking));
  EXPECT_EQ(
      chat({{"chat_template_kwargs", {{"enable_thinking", false}}}})["usage"]["prompt_tokens"],
      tokens(kNoThinking));
}

TEST_F(ServeThinkingTest, ChatTemplateKwargsMustBeAnObject) {
  httplib::Client c("127.0.0.1", port_);
  const Json body = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                     {"chat_template_kwargs", "enable_thinking=false"}};
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  const Json e = Json::parse(r->body);
  EXPECT_EQ(e["error"]["param"], "chat_template_kwargs") << r->body;
}

}  // namespace
}  // namespace shardlm
