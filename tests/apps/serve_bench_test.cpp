// shardlm-serve-bench without a model: the SSE splitter (events split at every byte boundary, CRLF
// and CR line ends, comments, several events per piece, [DONE]), the percentiles against
// hand-computed values, the prompts, and the real program run end to end against a fake
// OpenAI-compatible server (an httplib::Server on a free loopback port in this process) that
// streams a fixed number of chunks with small sleeps. Not a test of shardlm-serve itself.
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "apps/shardlm-serve-bench/event_loop_client.h"
#include "apps/shardlm-serve-bench/latency_stats.h"
#include "apps/shardlm-serve-bench/prompt_words.h"
#include "apps/shardlm-serve-bench/sse_parser.h"
#include "apps/shardlm-serve-bench/stream_client.h"
#include "run_command.h"

namespace {

using namespace shardlm::serve_bench;
using nlohmann::json;
using shardlm::testing::run_command;

// ---- SSE splitter ----------------------------------------------------------------------------

std::vector<std::string> feed_all(const std::vector<std::string>& pieces) {
  SseParser p;
  std::vector<std::string> events;
  for (const std::string& piece : pieces) p.feed(piece, events);
  return events;
}

// A stream with every feature: a comment, LF, CRLF and CR line ends, an event of two data lines,
// an ignored field, a data line without a space, an empty data line and [DONE].
const std::string kStream =
    ": keep-alive comment\n\n"
    "data: {\"a\":1}\n\n"
    "event: message\r\ndata: {\"b\":2}\r\n\r\n"
    "data: line one\ndata: line two\n\n"
    "id: 7\rdata:no-space\r\r"
    "data\n\n"
    "data: [DONE]\n\n";
const std::vector<std::string> kStreamEvents = {"{\"a\":1}", "{\"b\":2}", "line one\nline two",
                                                "no-space",  "",          "[DONE]"};

TEST(ServeBenchSse, WholeStreamInOnePiece) {
  EXPECT_EQ(feed_all({kStream}), kStreamEvents);
}

TEST(ServeBenchSse, SplitAtEveryByteBoundary) {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    EXPECT_EQ(feed_all({kStream.substr(0, cut), kStream.substr(cut)}), kStreamEvents)
        << "cut at byte " << cut;
  }
}

TEST(ServeBenchSse, SplitAtEveryPairOfBoundaries) {
  for (size_t a = 0; a <= kStream.size(); ++a) {
    for (size_t b = a; b <= kStream.size(); ++b) {
      ASSERT_EQ(feed_all({kStream.substr(0, a), kStream.substr(a, b - a), kStream.substr(b)}),
                kStreamEvents)
          << "cuts at bytes " << a << " and " << b;
    }
  }
}

TEST(ServeBenchSse, OneByteAtATime) {
  std::vector<std::string> pieces;
  for (const char c : kStream) pieces.emplace_back(1, c);
  EXPECT_EQ(feed_all(pieces), kStreamEvents);
}

TEST(ServeBenchSse, CrLfSplitBetweenCrAndLfIsOneLineEnd) {
  // "\r" ends the line; the "\n" in the next piece must not count as a second (blank) line.
  EXPECT_EQ(feed_all({"data: x\r", "\ndata: y\r\n", "\r\n"}), (std::vector<std::string>{"x\ny"}));
}

TEST(ServeBenchSse, SeveralEventsInOnePieceComeOutInOrder) {
  SseParser p;
  std::vector<std::string> events;
  p.feed("data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4", events);
  EXPECT_EQ(events, (std::vector<std::string>{"1", "2", "3"}));
  p.feed("\n\n", events);
  EXPECT_EQ(events, (std::vector<std::string>{"1", "2", "3", "4"}));
}

TEST(ServeBenchSse, CommentsAndFieldsWithoutDataMakeNoEvent) {
  EXPECT_TRUE(feed_all({": ping\n\n:another\r\n\r\nevent: x\nid: 3\nretry: 10\n\n"}).empty());
}

TEST(ServeBenchSse, FinishDropsAnUnfinishedEvent) {
  SseParser p;
  std::vector<std::string> events;
  p.feed("data: complete\n\ndata: cut off", events);
  EXPECT_EQ(events, (std::vector<std::string>{"complete"}));
  EXPECT_TRUE(p.finish());
  p.feed("\n\n", events);  // after finish() the cut-off event is gone
  EXPECT_EQ(events.size(), 1u);
  EXPECT_FALSE(p.finish());
}

// ---- percentiles -----------------------------------------------------------------------------

TEST(ServeBenchStats, PercentileInterpolatesBetweenRanks) {
  const std::vector<double> v = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};  // 1..10, unsorted
  // rank = p/100 * (n-1): p50 -> 4.5 -> 5.5; p90 -> 8.1 -> 9.1; p99 -> 8.91 -> 9.91
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 5.5);
  EXPECT_NEAR(percentile(v, 90), 9.1, 1e-12);
  EXPECT_NEAR(percentile(v, 99), 9.91, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 10);
  EXPECT_DOUBLE_EQ(percentile({10, 20}, 25), 12.5);
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 50), 2);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
  EXPECT_DOUBLE_EQ(percentile({1, 2}, 150), 2);  // clamped to 100
}

TEST(ServeBenchStats, Summary) {
  const Summary s = summarize({4, 1, 3, 2});
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 4);
  EXPECT_DOUBLE_EQ(s.p50, 2.5);
  EXPECT_NEAR(s.p90, 3.7, 1e-12);   // rank 2.7
  EXPECT_NEAR(s.p99, 3.97, 1e-12);  // rank 2.97
  EXPECT_EQ(summarize({}).count, 0u);
}

// ---- prompts and request bodies --------------------------------------------------------------

TEST(ServeBenchPrompts, DeterministicDistinctAndOfTheAskedLength) {
  const std::vector<std::string> a = make_prompts(200, 5, 42);
  EXPECT_EQ(a, make_prompts(200, 5, 42));
  EXPECT_NE(a, make_prompts(200, 5, 43));
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), a.size());
  for (const std::string& p : a) {
    std::istringstream in(p);
    std::string w;
    int n = 0;
    while (in >> w) ++n;
    EXPECT_EQ(n, 5) << p;
  }
  // 64 one-word prompts exist, all of them distinct; 65 cannot be made.
  const std::vector<std::string> all = make_prompts(64, 1, 1);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 64u);
  EXPECT_THROW(make_prompts(65, 1, 1), std::invalid_argument);
  EXPECT_THROW(make_prompts(1, 0, 1), std::invalid_argument);
}

TEST(ServeBenchRequestBody, ChatAndCompletions) {
  StreamRequest r;
  r.model = "m";
  r.prompt = "hello there";
  r.max_tokens = 7;
  r.ignore_eos = true;
  const json chat = json::parse(request_body(r));
  EXPECT_EQ(chat["model"], "m");
  EXPECT_EQ(chat["messages"], json::parse(R"([{"role":"user","content":"hello there"}])"));
  EXPECT_EQ(chat["max_tokens"], 7);
  EXPECT_EQ(chat["stream"], true);
  EXPECT_EQ(chat["stream_options"]["include_usage"], true);
  EXPECT_EQ(chat["ignore_eos"], true);
  EXPECT_FALSE(chat.contains("prompt"));
  r.endpoint = Endpoint::kCompletions;
  r.ignore_eos = false;
  const json completion = json::parse(request_body(r));
  EXPECT_EQ(completion["prompt"], "hello there");
  EXPECT_FALSE(completion.contains("messages"));
  EXPECT_FALSE(completion.contains("ignore_eos"));
}

// ---- the program against a fake server -------------------------------------------------------

struct FakeOptions {
  int chunks = 6;                 // text-carrying chunks per request
  int first_delay_ms = 40;        // before the first text chunk (after an empty role chunk)
  int gap_ms = 10;                // between text chunks
  bool usage = true;              // send the usage chunk
  int fail_status = 0;            // answer every request with this status and an OpenAI error body
  bool error_mid_stream = false;  // send an error object after the first text chunk
};

// An OpenAI-compatible server that streams `chunks` fixed chunks per request. Chat streams use
// LF line ends and split every event across two writes; completion streams use CRLF.
class FakeServer {
 public:
  explicit FakeServer(FakeOptions o) : o_(o) {
    server_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      if (o_.fail_status != 0) return fail(res);
      res.set_content(R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})",
                      "application/json");
    });
    server_.Post(
        "/v1/chat/completions",
        [this](const httplib::Request& req, httplib::Response& res) { stream(req, res, true); });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      stream(req, res, false);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::vector<json> bodies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  std::vector<std::string> auth_headers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return auth_;
  }

 private:
  void fail(httplib::Response& res) const {
    res.status = o_.fail_status;
    res.set_content(R"({"error":{"message":"invalid API key","type":"invalid_request_error"}})",
                    "application/json");
  }

  void stream(const httplib::Request& req, httplib::Response& res, bool chat) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(json::parse(req.body));
      auth_.push_back(req.get_header_value("Authorization"));
    }
    if (o_.fail_status != 0) return fail(res);
    const FakeOptions o = o_;
    res.set_chunked_content_provider("text/event-stream", [o, chat](size_t,
                                                                    httplib::DataSink& sink) {
      const std::string end = chat ? "\n\n" : "\r\n\r\n";
      const auto send = [&](const json& j) {
        const std::string event = "data: " + j.dump() + end;
        if (!chat) return sink.write(event.data(), event.size());
        const size_t half = event.size() / 2;  // an event split across two writes
        if (!sink.write(event.data(), half)) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return sink.write(event.data() + half, event.size() - half);
      };
      const auto text_chunk = [&](const std::string& text) {
        return chat ? json{{"object", "chat.completion.chunk"},
                           {"choices", {{{"index", 0}, {"delta", {{"content", text}}}}}}}
                    : json{{"object", "text_completion"},
                           {"choices", {{{"index", 0}, {"text", text}}}}};
      };
      const std::string comment = ": fake server" + end;
      sink.write(comment.data(), comment.size());
      if (chat) {
        send({{"object", "chat.completion.chunk"},
              {"choices", {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}}}}});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(o.first_delay_ms));
      for (int i = 0; i < o.chunks; ++i) {
        if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.gap_ms));
        if (!send(text_chunk(" tok" + std::to_string(i)))) return false;
        if (o.error_mid_stream) {
          send({{"error", {{"message", "the engine fell over"}, {"code", 500}}}});
          break;
        }
      }
      if (o.usage && !o.error_mid_stream) {
        send({{"choices", json::array()},
              {"usage",
               {{"prompt_tokens", 10},
                {"completion_tokens", o.chunks},
                {"total_tokens", 10 + o.chunks}}}});
      }
      const std::string done = "data: [DONE]" + end;
      sink.write(done.data(), done.size());
      sink.done();
      return true;
    });
  }

  FakeOptions o_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<json> bodies_;
  std::vector<std::string> auth_;
};

std::string bench(int port, const std::string& flags) {
  return std::string(SHARDLM_SERVE_BENCH_BIN) + " --port " + std::to_string(port) + " " + flags;
}

// Runs the bench with --json; stderr is dropped so stdout is the JSON alone.
json bench_json(int port, const std::string& flags, int expect_code) {
  const auto r = run_command("{ " + bench(port, flags + " --json") + " 2>/dev/null; }");
  EXPECT_EQ(r.code, expect_code) << r.out;
  const json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

void chat_streams_are_timed_and_counted(const std::string& client) {
  FakeOptions o;
  FakeServer server(o);
  const json j = bench_json(server.port(),
                            "--concurrency 4 --requests 8 --max-tokens 6 --prompt-words 5 "
                            "--ignore-eos --api-key secret" +
                                client,
                            0);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["requests_ok"], 8);
  EXPECT_EQ(j["requests_failed"], 0);
  EXPECT_EQ(j["output_tokens"], 8 * o.chunks);
  EXPECT_EQ(j["requests_without_usage"], 0);
  EXPECT_DOUBLE_EQ(j["mean_output_tokens"].get<double>(), o.chunks);
  EXPECT_EQ(j["config"]["model"], "fake-model");  // from GET /v1/models
  EXPECT_EQ(j["config"]["endpoint"], "/v1/chat/completions");
  EXPECT_GT(j["requests_per_s"].get<double>(), 0);
  EXPECT_GT(j["output_tokens_per_s"].get<double>(), 0);
  // TTFT: the empty role chunk does not count; the first text comes after first_delay_ms.
  EXPECT_EQ(j["ttft_ms"]["count"], 8);
  EXPECT_GE(j["ttft_ms"]["p50"].get<double>(), 0.8 * o.first_delay_ms);
  EXPECT_LT(j["ttft_ms"]["p99"].get<double>(), 10000);
  // ITL: chunks - 1 gaps per request, about gap_ms each.
  EXPECT_EQ(j["itl_ms"]["count"], 8 * (o.chunks - 1));
  EXPECT_GE(j["itl_ms"]["p50"].get<double>(), 0.5 * o.gap_ms);
  EXPECT_LT(j["itl_ms"]["p50"].get<double>(), 5000);
  EXPECT_GE(j["latency_ms"]["p50"].get<double>(), j["ttft_ms"]["p50"].get<double>());
  EXPECT_TRUE(j["first_error"].is_null());

  const std::vector<json> bodies = server.bodies();
  ASSERT_EQ(bodies.size(), 8u);
  std::set<std::string> prompts;
  for (const json& b : bodies) {
    EXPECT_EQ(b["model"], "fake-model");
    EXPECT_EQ(b["stream"], true);
    EXPECT_EQ(b["stream_options"]["include_usage"], true);
    EXPECT_EQ(b["max_tokens"], 6);
    EXPECT_EQ(b["ignore_eos"], true);
    prompts.insert(b["messages"][0]["content"].get<std::string>());
  }
  EXPECT_EQ(prompts.size(), 8u);  // a different prompt per request
  for (const std::string& a : server.auth_headers()) EXPECT_EQ(a, "Bearer secret");
}

// Both clients: the epoll loop (default) and a thread per stream (--client-threads).
TEST(ServeBenchRun, ChatStreamsAreTimedAndCounted) {
  for (const std::string client : {"", " --client-threads"}) {
    SCOPED_TRACE("client flags:" + client);
    chat_streams_are_timed_and_counted(client);
  }
}

TEST(ServeBenchRun, CompletionsTextReport) {
  FakeOptions o;
  o.chunks = 4;
  FakeServer server(o);
  const auto r = run_command(bench(server.port(),
                                   "--endpoint completions --model my-model --concurrency 3 "
                                   "--requests 5 --max-tokens 4"));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("POST /v1/completions, model \"my-model\", concurrency 3, 5 requests"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("requests:          5 ok, 0 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(20 tokens)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(5 requests)"), std::string::npos) << r.out;  // TTFT count
  EXPECT_NE(r.out.find("(15 gaps)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens/request:    4.0 mean"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("first error"), std::string::npos) << r.out;
  for (const json& b : server.bodies()) {
    EXPECT_EQ(b["model"], "my-model");
    EXPECT_TRUE(b["prompt"].is_string());
    EXPECT_FALSE(b.contains("ignore_eos"));
  }
}

TEST(ServeBenchRun, WithoutUsageTokensAreCountedFromChunks) {
  FakeOptions o;
  o.usage = false;
  o.first_delay_ms = 5;
  o.gap_ms = 2;
  FakeServer server(o);
  const json j = bench_json(server.port(), "--concurrency 2 --requests 4", 0);
  EXPECT_EQ(j["output_tokens"], 4 * o.chunks);
  EXPECT_EQ(j["requests_without_usage"], 4);
  const auto r = run_command(bench(server.port(), "--concurrency 2 --requests 2"));
  EXPECT_NE(r.out.find("2 requests without usage"), std::string::npos) << r.out;
}

TEST(ServeBenchRun, UnauthorizedRequestsFailWithTheServersMessage) {
  FakeOptions o;
  o.fail_status = 401;
  FakeServer server(o);
  // With --model: every request is answered 401.
  const auto r = run_command(bench(server.port(), "--model m --concurrency 2 --requests 3"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("0 ok, 3 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("http 401 x3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("first error:       HTTP 401: invalid API key"), std::string::npos) << r.out;
  // Without --model the model lookup is refused already.
  const auto lookup = run_command(bench(server.port(), "--requests 2"));
  EXPECT_EQ(lookup.code, 1) << lookup.out;
  EXPECT_NE(lookup.out.find("no model from GET /v1/models at 127.0.0.1:" +
                            std::to_string(server.port()) + ": HTTP 401: invalid API key"),
            std::string::npos)
      << lookup.out;
  const json j = bench_json(server.port(), "--model m --requests 2 --concurrency 1", 1);
  EXPECT_EQ(j["requests_failed"], 2);
  EXPECT_EQ(j["errors"]["http 401"], 2);
  EXPECT_EQ(j["first_error"], "HTTP 401: invalid API key");
}

TEST(ServeBenchRun, AnErrorInTheStreamFailsTheRequest) {
  FakeOptions o;
  o.error_mid_stream = true;
  o.first_delay_ms = 5;
  FakeServer server(o);
  const auto r = run_command(bench(server.port(), "--concurrency 2 --requests 2"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("0 ok, 2 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the engine fell over"), std::string::npos) << r.out;
}

// ---- the event-loop client against raw answers ----------------------------------------------

// A TCP server on a free loopback port that answers each connection with `answer` (after
// reading the request's first bytes) and closes it; with hang = true it reads and never answers.
class RawServer {
 public:
  RawServer(std::string answer, int connections, bool hang = false) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this, answer, connections, hang] {
      for (int i = 0; i < connections; ++i) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[4096];
        (void)::recv(c, buf, sizeof(buf), 0);
        if (hang) {
          held_.push_back(c);
          continue;
        }
        (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~RawServer() {
    thread_.join();
    for (int c : held_) ::close(c);
    ::close(fd_);
  }
  ServerConfig config(double timeout_s = 10) const {
    ServerConfig c;
    c.port = port_;
    c.timeout_s = timeout_s;
    return c;
  }

 private:
  int fd_ = -1, port_ = 0;
  std::thread thread_;
  std::vector<int> held_;
};

std::vector<StreamRequest> completions(int n) {
  std::vector<StreamRequest> r(static_cast<size_t>(n));
  for (StreamRequest& q : r) {
    q.endpoint = Endpoint::kCompletions;
    q.prompt = "x";
  }
  return r;
}

TEST(ServeBenchEventLoop, ContentLengthBodyWithoutUsageCountsTextChunks) {
  const std::string body =
      "data: {\"choices\":[{\"text\":\"a\"}]}\r\n\r\n"
      "data: {\"choices\":[{\"text\":\"b\"}]}\n\ndata: [DONE]\n\n";
  RawServer server("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\ncontent-length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body,
                   3);
  const auto results = run_streams_event_loop(server.config(), completions(3), 2);
  ASSERT_EQ(results.size(), 3u);
  for (const StreamResult& r : results) {
    EXPECT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.http_status, 200);
    EXPECT_EQ(r.text_chunks, 2);
    EXPECT_EQ(r.completion_tokens, 2);
    EXPECT_FALSE(r.usage_reported);
    EXPECT_EQ(r.itl_s.size(), 1u);
  }
}

TEST(ServeBenchEventLoop, BrokenAnswersFailEachRequestClearly) {
  {
    RawServer server("SSH-2.0-OpenSSH\r\n\r\n", 1);
    const auto r = run_streams_event_loop(server.config(), completions(1), 1);
    EXPECT_FALSE(r[0].ok);
    EXPECT_EQ(r[0].error_kind, "read");
    EXPECT_NE(r[0].error.find("not an HTTP answer: SSH-2.0"), std::string::npos) << r[0].error;
  }
  {  // a chunked stream cut off after its first event: no [DONE]
    RawServer server(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "22\r\ndata: {\"choices\":[{\"text\":\"a\"}]}\n\n\r\n",
        1);
    const auto r = run_streams_event_loop(server.config(), completions(1), 1);
    EXPECT_FALSE(r[0].ok);
    EXPECT_EQ(r[0].error_kind, "incomplete stream") << r[0].error;
    EXPECT_EQ(r[0].text_chunks, 1);
  }
  {  // closed inside the headers
    RawServer server("HTTP/1.1 200 OK\r\nContent-Ty", 1);
    const auto r = run_streams_event_loop(server.config(), completions(1), 1);
    EXPECT_EQ(r[0].error_kind, "read");
    EXPECT_NE(r[0].error.find("inside the headers"), std::string::npos) << r[0].error;
  }
  {  // a 503 with a chunked OpenAI error body
    const std::string err = R"({"error":{"message":"the queue is full","code":503}})";
    std::ostringstream hex;
    hex << std::hex << err.size();
    RawServer server("HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n" +
                         hex.str() + "\r\n" + err + "\r\n0\r\n\r\n",
                     1);
    const auto r = run_streams_event_loop(server.config(), completions(1), 1);
    EXPECT_EQ(r[0].http_status, 503);
    EXPECT_EQ(r[0].error_kind, "http 503");
    EXPECT_EQ(r[0].error, "HTTP 503: the queue is full");
  }
}

TEST(ServeBenchEventLoop, ASilentServerTimesOutAndNoServerIsAConnectionError) {
  {
    RawServer server("", 2, /*hang=*/true);
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = run_streams_event_loop(server.config(0.3), completions(2), 2);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
    for (const StreamResult& x : r) {
      EXPECT_EQ(x.error_kind, "timeout") << x.error;
      EXPECT_GE(x.total_s, 0.3);
    }
  }
  int port;
  {
    RawServer gone("", 0);
    port = gone.config().port;
  }  // closed: nothing listens there now
  ServerConfig c;
  c.port = port;
  const auto r = run_streams_event_loop(c, completions(2), 2);
  for (const StreamResult& x : r) {
    EXPECT_EQ(x.error_kind, "connection");
    EXPECT_NE(x.error.find("could not connect"), std::string::npos) << x.error;
  }
}

TEST(ServeBenchRun, NoServerOrBadFlagsExitTwo) {
  int port;
  {
    FakeServer gone(FakeOptions{});
    port = gone.port();
  }  // nothing listens on `port` now
  const auto r = run_command(bench(port, "--requests 1"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("cannot reach the server at 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << r.out;
  EXPECT_EQ(run_command(bench(port, "--endpoint embeddings")).code, 2);
  EXPECT_EQ(run_command(bench(port, "--concurrency 0")).code, 2);
  EXPECT_EQ(run_command(bench(port, "--no-such-flag")).code, 2);
  const auto help = run_command(std::string(SHARDLM_SERVE_BENCH_BIN) + " --help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--ignore-eos"), std::string::npos);
}

}  // namespace
