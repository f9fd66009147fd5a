// shardlm-serve end to end: the server (apps/shardlm-serve/server.h) runs in this process on a
// free loopback port over the committed demo model (models/demo/target, packed at TP 1 into a
// temp dir) and is driven through HTTP with cpp-httplib's client. Checks the OpenAI shapes,
// streaming against non-streaming, usage, stop strings, max_tokens, n and seed, logprobs, 32
// concurrent greedy clients against their solo runs, bad requests with their statuses while the
// server keeps serving, clients that disconnect mid-stream or before a non-streamed answer
// (cancelled, blocks freed), --stream-interval, and a second server on the port in use (a clear
// error, no shared port).
#include <httplib.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "apps/shardlm-serve/completion_runner.h"
#include "apps/shardlm-serve/openai_request.h"
#include "apps/shardlm-serve/server.h"
#include "tests/batching/step_test_util.h"
#include "tests/support/tiny_checkpoint.h"

namespace shardlm {
namespace {

using Json = nlohmann::json;
constexpr const char* kKey = "test-key";

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);
    tmp_ = new shardlm::testing::TempDir();
    const std::string dir = pack_at(SHARDLM_MODELS_DIR "/demo/target", tmp_->path(), 1);
    EngineOptions eo;
    eo.pack_dir = dir;
    eo.n_threads = 2;
    eo.n_ctx = 256;
    eo.max_batch_tokens = 128;
    eo.default_sequence = false;
    eo.kv_blocks = 40 * (256 / 16);  // 40 full contexts: 32 clients never wait for blocks
    // Exact activations: solo and batched greedy texts are compared token for token, and only
    // deterministic mode promises that outright; bf16 rounding turns the GEMV-vs-GEMM summation
    // order into different bf16 activations often enough to flip this tiny model's near-ties.
    eo.activations = MatmulActivations::kF32;
    engine_ = new Engine(eo);
    StepEngineOptions so;
    so.max_seqs = 32;
    loop_ = new std::shared_ptr<ServingLoop>(
        std::make_shared<ServingLoop>(std::shared_ptr<Engine>(engine_, [](Engine*) {}), so));
    serve::ServerOptions opt;
    opt.host = "127.0.0.1";
    opt.port = 0;
    opt.api_key = kKey;
    opt.max_body_bytes = 1 << 20;
    opt.access_log = false;
    opt.shutdown_seconds = 2;
    server_ = new serve::Server(opt);
    port_ = server_->bind();
    thread_ = new std::thread([] { server_->serve(); });
    {  // before the model is set: loading
      httplib::Client c("127.0.0.1", port_);
      auto r = c.Get("/health");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 503);
      EXPECT_NE(r->body.find("loading"), std::string::npos);
    }
    server_->set_model(*loop_, ModelText::load(engine_->pack(0)), "demo");
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
    delete loop_;
    delete engine_;
    delete tmp_;
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_default_headers({{"Authorization", std::string("Bearer ") + kKey}});
    c.set_read_timeout(120, 0);
    return c;
  }
  static Json post(const std::string& path, const Json& body, int want_status = 200) {
    auto c = client();
    auto r = c.Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r) << path;
    if (!r) return Json();
    EXPECT_EQ(r->status, want_status) << r->body;
    return Json::parse(r->body);
  }
  // The SSE events of a streamed request ("[DONE]" as a string event).
  static std::vector<Json> stream(const std::string& path, Json body) {
    body["stream"] = true;
    auto c = client();
    std::string raw;
    auto r = c.Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
    std::vector<Json> events;
    size_t pos = 0;
    while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
      const size_t end = r->body.find("\n\n", pos);
      const std::string payload = r->body.substr(pos + 6, end - pos - 6);
      events.push_back(payload == "[DONE]" ? Json("[DONE]") : Json::parse(payload));
      pos = end;
    }
    return events;
  }
  static std::string streamed_text(const std::vector<Json>& events, bool chat, int index = 0) {
    std::string text;
    for (const Json& e : events) {
      if (!e.is_object() || e["choices"].empty()) continue;
      for (const Json& c : e["choices"]) {
        if (c["index"] != index) continue;
        if (chat && c["delta"].contains("content")) text += c["delta"]["content"];
        if (!chat) text += c["text"];
      }
    }
    return text;
  }

  // Waits (up to 20 s) until no sequence runs and no request is answered; then checks that and
  // that every KV block is back in the pool. Returns the engine's counters.
  static StepEngineStats wait_until_idle() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    StepEngineStats st;
    do {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      st = (*loop_)->stats();
    } while ((st.n_running > 0 || server_->in_flight() > 0) &&
             std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(st.n_running, 0);
    EXPECT_EQ(server_->in_flight(), 0);
    EXPECT_EQ(st.n_blocks_used, 0) << "blocks still referenced";
    return st;
  }

  static shardlm::testing::TempDir* tmp_;
  static Engine* engine_;
  static std::shared_ptr<ServingLoop>* loop_;
  static serve::Server* server_;
  static std::thread* thread_;
  static int port_;
};

shardlm::testing::TempDir* ServeTest::tmp_ = nullptr;
Engine* ServeTest::engine_ = nullptr;
std::shared_ptr<ServingLoop>* ServeTest::loop_ = nullptr;
serve::Server* ServeTest::server_ = nullptr;
std::thread* ServeTest::thread_ = nullptr;
int ServeTest::port_ = 0;

const Json kChat = {{"model", "demo"},
                    {"messages", {{{"role", "user"}, {"content", "def fibonacci(n):"}}}},
                    {"temperature", 0},
                    {"max_tokens", 24},
                    {"ignore_eos", true}};
const Json kCompletion = {{"prompt", "import os\nimport sys\n\ndef main(argv):\n"},
                          {"temperature", 0},
                          {"max_tokens", 24}};

TEST_F(ServeTest, HealthModelsAndMetrics) {
  httplib::Client c("127.0.0.1", port_);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto m = client().Get("/v1/models");
  ASSERT_TRUE(m);
  const Json models = Json::parse(m->body);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "demo");
  EXPECT_EQ(models["data"][0]["max_model_len"], 256);
  post("/v1/completions", kCompletion);
  auto x = c.Get("/metrics");
  ASSERT_TRUE(x);
  for (const char* name :
       {"shardlm_requests_total{status=\"200\"}", "shardlm_prompt_tokens_total",
        "shardlm_generation_tokens_total", "shardlm_time_to_first_token_seconds_bucket",
        "shardlm_inter_token_latency_seconds_bucket", "shardlm_num_requests_running",
        "shardlm_num_requests_waiting", "shardlm_kv_blocks_used", "shardlm_kv_blocks_total 640",
        "shardlm_prefix_cache_hit_rate"}) {
    EXPECT_NE(x->body.find(name), std::string::npos) << name;
  }
}

TEST_F(ServeTest, StreamedChunksConcatenateToTheNonStreamedTextWithUsage) {
  for (bool chat : {true, false}) {
    SCOPED_TRACE(chat ? "chat" : "completions");
    const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
    Json body = chat ? kChat : kCompletion;
    const Json full = post(path, body);
    EXPECT_EQ(full["object"], chat ? "chat.completion" : "text_completion");
    const std::string text =
        chat ? full["choices"][0]["message"]["content"] : full["choices"][0]["text"];
    EXPECT_FALSE(text.empty());
    const Json& u = full["usage"];
    EXPECT_EQ(u["completion_tokens"], 24);
    EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + 24);
    EXPECT_EQ(full["choices"][0]["finish_reason"], "length");
    if (!chat) {  // the prompt count is the tokenizer's
      const auto ids = ModelText::load(engine_->pack(0))
                           ->tokenizer()
                           .encode(kCompletion["prompt"].get<std::string>(), true);
      EXPECT_EQ(u["prompt_tokens"], static_cast<int>(ids.size()));
    }

    body["stream_options"] = {{"include_usage", true}};
    const std::vector<Json> events = stream(path, body);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), Json("[DONE]"));
    EXPECT_EQ(streamed_text(events, chat), text);
    const Json& last = events[events.size() - 2];
    EXPECT_TRUE(last["choices"].empty());
    EXPECT_EQ(last["usage"], u);
    if (chat) {
      EXPECT_EQ(events[0]["object"], "chat.completion.chunk");
      EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
    }
    const Json& fin = events[events.size() - 3]["choices"][0];
    EXPECT_EQ(fin["finish_reason"], "length");
  }
}

TEST_F(ServeTest, StopStringsMaxTokensNAndSeed) {
  const Json full = post("/v1/completions", kCompletion);
  const std::string text = full["choices"][0]["text"];
  ASSERT_GE(text.size(), 8u);
  // A stop string from the middle of the greedy text: the reply ends before it.
  const std::string stop = text.substr(text.size() / 2, 3);
  Json body = kCompletion;
  body["stop"] = Json::array({"never-appears", stop});
  const Json cut = post("/v1/completions", body);
  const std::string cut_text = cut["choices"][0]["text"];
  EXPECT_EQ(cut_text, text.substr(0, text.find(stop)));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(streamed_text(stream("/v1/completions", body), false), cut_text);

  body = kCompletion;
  body["max_tokens"] = 5;
  EXPECT_EQ(post("/v1/completions", body)["usage"]["completion_tokens"], 5);

  // n choices with a seed: reproducible, and the choices differ from each other.
  body = kCompletion;
  body["temperature"] = 1.0;
  body["n"] = 3;
  body["seed"] = 1234;
  body["ignore_eos"] = true;
  const Json a = post("/v1/completions", body);
  const Json b = post("/v1/completions", body);
  ASSERT_EQ(a["choices"].size(), 3u);
  EXPECT_EQ(a["choices"], b["choices"]);
  EXPECT_EQ(a["usage"]["completion_tokens"], 3 * 24);
  EXPECT_TRUE(a["choices"][0]["text"] != a["choices"][1]["text"] ||
              a["choices"][1]["text"] != a["choices"][2]["text"]);
  body["seed"] = 99;
  EXPECT_NE(post("/v1/completions", body)["choices"], a["choices"]);
}

TEST_F(ServeTest, LogprobsHaveOpenAIsShape) {
  Json body = kChat;
  body["logprobs"] = true;
  body["top_logprobs"] = 3;
  const Json r = post("/v1/chat/completions", body);
  const Json& content = r["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 24u);
  for (const Json& t : content) {
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_TRUE(t["bytes"].is_array());
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(t["token"], t["top_logprobs"][0]["token"]);
    EXPECT_NEAR(t["logprob"].get<double>(), t["top_logprobs"][0]["logprob"].get<double>(), 1e-6);
    EXPECT_GE(t["top_logprobs"][0]["logprob"].get<double>(),
              t["top_logprobs"][1]["logprob"].get<double>());
  }
  Json cb = kCompletion;
  cb["logprobs"] = 2;
  const Json c = post("/v1/completions", cb);
  const Json& lp = c["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), 24u);
  EXPECT_EQ(lp["token_logprobs"].size(), 24u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(lp["text_offset"][0], 0);
  // Streamed logprobs cover every token too.
  body["stream"] = true;
  size_t n = 0;
  for (const Json& e : stream("/v1/chat/completions", body)) {
    if (e.is_object() && !e["choices"].empty() && e["choices"][0]["logprobs"].is_object()) {
      n += e["choices"][0]["logprobs"]["content"].size();
    }
  }
  EXPECT_EQ(n, 24u);
}

TEST_F(ServeTest, ThirtyTwoConcurrentGreedyClientsGetTheirSoloText) {
  constexpr int kClients = 32;
  auto body_of = [](int i) {
    Json b = kCompletion;
    b["prompt"] = "def function_" + std::to_string(i * 7919 % 1000) + "(x, y):\n    ";
    b["max_tokens"] = 16;
    b["ignore_eos"] = true;
    return b;
  };
  std::vector<std::string> solo(kClients);
  for (int i = 0; i < kClients; ++i)
    solo[i] = post("/v1/completions", body_of(i))["choices"][0]["text"];
  std::vector<std::string> together(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto c = client();
      auto r = c.Post("/v1/completions", body_of(i).dump(), "application/json");
      if (r && r->status == 200) together[i] = Json::parse(r->body)["choices"][0]["text"];
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(together[i], solo[i]) << "client " << i;
  EXPECT_GT((*loop_)->stats().max_seqs_in_a_step, 1);
}

TEST_F(ServeTest, BadRequestsGetTheirStatusAndTheServerKeepsServing) {
  auto c = client();
  auto expect = [&](const std::string& body, int status, const std::string& needle,
                    const char* path = "/v1/chat/completions") {
    auto r = c.Post(path, body, "application/json");
    ASSERT_TRUE(r) << body.substr(0, 80);
    EXPECT_EQ(r->status, status) << body.substr(0, 80) << " -> " << r->body;
    const Json e = Json::parse(r->body);
    ASSERT_TRUE(e.contains("error")) << r->body;
    for (const char* k : {"message", "type", "param", "code"}) EXPECT_TRUE(e["error"].contains(k));
    EXPECT_NE(e["error"]["message"].get<std::string>().find(needle), std::string::npos)
        << e["error"]["message"];
  };
  expect(R"({"messages": [{"role": "user", "content": "hi"})", 400, "not valid JSON");
  expect(R"({"messages": "hello"})", 400, "'messages' must be a non-empty list");
  expect(R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400, "unknown role");
  expect(R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -3})", 400,
         "'max_tokens' must be between");
  expect(R"({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})", 400,
         "'temperature' must be a number");
  expect(R"({"messages": [{"role": "user", "content": "hi"}], "top_p": 1.5})", 400, "'top_p'");
  expect(std::string(R"({"messages": [{"role": "user", "content": "bad )") + "\xff\xfe" + R"("}]})",
         400, "not valid JSON");
  expect(R"({"prompt": "x", "model": "gpt-4"})", 404, "does not exist", "/v1/completions");
  expect(R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]})",
         400, "tool calling is not supported");
  expect(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", 400,
         "this model takes text");
  // A prompt over the context: the numbers, as vLLM says them.
  std::string long_prompt;
  for (int i = 0; i < 400; ++i) long_prompt += "value = compute(value) ";
  expect(Json{{"prompt", long_prompt}, {"max_tokens", 10}}.dump(), 400,
         "maximum context length is 256 tokens", "/v1/completions");
  // 10 MB body: over the 1 MiB limit.
  const std::string huge = R"({"prompt": ")" + std::string(10 << 20, 'a') + R"("})";
  auto big = c.Post("/v1/completions", huge, "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  // Keys.
  httplib::Client nokey("127.0.0.1", port_);
  auto r401 = nokey.Post("/v1/completions", kCompletion.dump(), "application/json");
  ASSERT_TRUE(r401);
  EXPECT_EQ(r401->status, 401);
  httplib::Client wrong("127.0.0.1", port_);
  wrong.set_default_headers({{"Authorization", "Bearer nope"}});
  auto w = wrong.Post("/v1/completions", kCompletion.dump(), "application/json");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 401);
  EXPECT_EQ(Json::parse(w->body)["error"]["code"], "invalid_api_key");
  auto nf = c.Get("/v1/nothing");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  // Unknown fields are ignored, as OpenAI does, and the server still answers.
  Json extra = kCompletion;
  extra["frobnicate"] = {{"a", 1}};
  EXPECT_EQ(post("/v1/completions", extra)["usage"]["completion_tokens"], 24);
}

TEST_F(ServeTest, ClientThatDisconnectsMidStreamIsCancelledAndItsBlocksFreed) {
  Json body = kCompletion;
  body["max_tokens"] = 200;
  body["ignore_eos"] = true;
  body["stream"] = true;
  auto c = client();
  const int64_t computed_before = (*loop_)->stats().tokens_computed;
  int chunks = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.headers = {{"Authorization", std::string("Bearer ") + kKey},
                 {"Content-Type", "application/json"}};
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    chunks += static_cast<int>(std::count(data, data + n, '\n') / 2);
    return chunks < 3;  // hang up after a few events
  };
  httplib::Response res;
  httplib::Error err;
  c.send(req, res, err);
  EXPECT_GE(chunks, 3);
  // The request ends long before 200 tokens and its blocks go back to the pool.
  const StepEngineStats st = wait_until_idle();
  // Cancelled a few tokens in, not after its 200 (the prompt is 13 tokens).
  EXPECT_LT(st.tokens_computed - computed_before, 13 + 100);
  auto m = httplib::Client("127.0.0.1", port_).Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("shardlm_requests_total{status=\"499\"} 1"), std::string::npos);
}

// A non-streaming client that gives up (its read times out and it closes the connection) is
// found by the server before the generation ends: cancelled, blocks freed, 499 recorded.
TEST_F(ServeTest, NonStreamingClientThatHangsUpIsCancelledAndItsBlocksFreed) {
  const int nl = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
  if (nl < 0) GTEST_SKIP() << "no NETLINK_SOCK_DIAG here: PeerWatch cannot see the connection";
  close(nl);
  Json body = kCompletion;
  body["max_tokens"] = 220;
  body["ignore_eos"] = true;
  auto before = httplib::Client("127.0.0.1", port_).Get("/metrics");
  ASSERT_TRUE(before);
  const bool had_499 =
      before->body.find("shardlm_requests_total{status=\"499\"}") != std::string::npos;
  const int64_t computed_before = (*loop_)->stats().tokens_computed;
  {
    auto c = client();
    c.set_read_timeout(0, 20'000);  // gives up after 20 ms, long before 220 tokens
    auto r = c.Post("/v1/completions", body.dump(), "application/json");
    EXPECT_FALSE(r) << "the response came before the client gave up";
  }
  const StepEngineStats st = wait_until_idle();
  EXPECT_LT(st.tokens_computed - computed_before, 13 + 200) << "ran to its end";
  auto m = httplib::Client("127.0.0.1", port_).Get("/metrics");
  ASSERT_TRUE(m);
  // The streaming disconnect test may have recorded one 499 already.
  EXPECT_NE(m->body.find(had_499 ? "shardlm_requests_total{status=\"499\"} 2"
                                 : "shardlm_requests_total{status=\"499\"} 1"),
            std::string::npos)
      << m->body;
}

// --stream-interval: every delta but a choice's last carries at least that many tokens, and the
// text is the same as with one token per delta.
TEST_F(ServeTest, StreamIntervalGroupsTokensWithoutChangingTheText) {
  const auto text = ModelText::load(engine_->pack(0));
  Json body = kCompletion;
  body["max_tokens"] = 30;
  body["ignore_eos"] = true;
  body["logprobs"] = 0;  // one logprob per token: counts the tokens of each delta
  const serve::CompletionRequest r =
      serve::parse_completion_request(body.dump(), serve::Endpoint::kCompletions, text->defaults());
  auto run = [&](int64_t interval, std::vector<serve::ChoiceDelta>* deltas) {
    serve::CompletionRunner runner(**loop_, *text, interval);
    return runner.run(
        r, runner.prompts(r),
        [&](const serve::ChoiceDelta& d) {
          deltas->push_back(d);
          return true;
        },
        [] { return false; });
  };
  std::vector<serve::ChoiceDelta> one, four;
  const serve::RunResult a = run(1, &one), b = run(4, &four);
  ASSERT_EQ(a.choices.size(), 1u);
  ASSERT_EQ(b.choices.size(), 1u);
  EXPECT_EQ(b.choices[0].text, a.choices[0].text);
  EXPECT_EQ(b.completion_tokens, 30);
  std::string joined;
  size_t tokens = 0;
  for (size_t i = 0; i < four.size(); ++i) {
    joined += four[i].text;
    tokens += four[i].logprobs.size();
    if (i + 1 < four.size()) {
      EXPECT_GE(four[i].logprobs.size(), 4u) << "delta " << i;
    }
  }
  EXPECT_EQ(joined, a.choices[0].text);
  EXPECT_EQ(tokens, 30u);
  EXPECT_LT(four.size(), one.size());
}

// A second server on a port that is in use fails at bind with a message naming the port; it must
// not share the port with the first (SO_REUSEPORT would let the kernel split connections between
// the two, and an old server left running would silently answer half the clients).
TEST_F(ServeTest, SecondServerOnAPortInUseFailsWithAClearError) {
  serve::ServerOptions opt;
  opt.host = "127.0.0.1";
  opt.port = port_;
  opt.access_log = false;
  serve::Server second(opt);
  try {
    second.bind();
    ADD_FAILURE() << "a second server bound 127.0.0.1:" << port_;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(port_)),
              std::string::npos)
        << e.what();
  }
  // The first server still answers.
  auto r = httplib::Client("127.0.0.1", port_).Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace shardlm
