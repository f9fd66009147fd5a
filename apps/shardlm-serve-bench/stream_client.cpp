// run_stream_request() and first_model() of stream_client.h over cpp-httplib: the body goes to a
// content receiver chunk by chunk, so every text-carrying chunk is timed when it arrives. One
// connection per request (no keep-alive). Not the worker threads (main.cpp).
#include "apps/shardlm-serve-bench/stream_client.h"

#include <httplib.h>

#include <chrono>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "apps/shardlm-serve-bench/sse_parser.h"
#include "apps/shardlm-serve-bench/stream_state.h"

namespace shardlm::serve_bench {
namespace {

using nlohmann::json;

// What a failed httplib call means, in words.
std::string describe(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "could not connect";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "reading the answer failed or timed out";
    case httplib::Error::Write:
      return "sending the request failed";
    default:
      return "HTTP client error " + httplib::to_string(e);
  }
}

void configure(httplib::Client& cli, const ServerConfig& server) {
  const auto sec = static_cast<time_t>(server.timeout_s);
  const auto usec = static_cast<time_t>((server.timeout_s - static_cast<double>(sec)) * 1e6);
  cli.set_connection_timeout(sec, usec);
  cli.set_read_timeout(sec, usec);
  cli.set_write_timeout(sec, usec);
  cli.set_keep_alive(false);
  cli.set_decompress(false);  // a compressed stream would arrive in bursts: ask for identity
}

httplib::Headers base_headers(const ServerConfig& server) {
  httplib::Headers h{{"Accept-Encoding", "identity"}};
  if (!server.api_key.empty()) h.emplace("Authorization", "Bearer " + server.api_key);
  return h;
}

}  // namespace

const char* endpoint_path(Endpoint e) {
  return e == Endpoint::kChat ? "/v1/chat/completions" : "/v1/completions";
}

std::string request_body(const StreamRequest& r) {
  json body = json::object();
  if (!r.model.empty()) body["model"] = r.model;
  if (r.endpoint == Endpoint::kChat) {
    body["messages"] = json::array({{{"role", "user"}, {"content", r.prompt}}});
  } else {
    body["prompt"] = r.prompt;
  }
  body["max_tokens"] = r.max_tokens;
  body["temperature"] = r.temperature;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  if (r.ignore_eos) body["ignore_eos"] = true;
  return body.dump();
}

StreamResult run_stream_request(const ServerConfig& server, const StreamRequest& r) {
  StreamResult out;
  httplib::Client cli(server.host, server.port);
  configure(cli, server);

  httplib::Request req;
  req.method = "POST";
  req.path = endpoint_path(r.endpoint);
  req.headers = base_headers(server);
  req.set_header("Accept", "text/event-stream");
  req.set_header("Content-Type", "application/json");
  req.body = request_body(r);

  const Clock::time_point start = Clock::now();
  StreamState state(r.endpoint, start, out);
  SseParser parser;
  std::vector<std::string> events;
  std::string error_body;
  int status = 0;
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    const Clock::time_point now = Clock::now();
    if (status != 200) {  // an error answer: keep its body for the message
      if (error_body.size() < kMaxErrorBody) error_body.append(data, len);
      return true;
    }
    if (seconds(start, now) > server.timeout_s) {
      return state.fail("timeout",
                        "no [DONE] within --timeout " + std::to_string(server.timeout_s) + " s");
    }
    events.clear();
    parser.feed(std::string_view(data, len), events);
    for (const std::string& e : events) {
      if (!state.on_event(e, now)) return false;
    }
    return true;
  };

  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = cli.send(req, res, err);
  out.total_s = seconds(start, Clock::now());
  out.http_status = status;
  if (!out.error.empty()) return out;  // the stream itself failed (set by StreamState)
  if (!sent || err != httplib::Error::Success) {
    out.error_kind = err == httplib::Error::Connection ? "connection"
                     : err == httplib::Error::Read     ? "read"
                                                       : "http client";
    out.error = describe(err);
    return out;
  }
  if (status != 200) {
    out.error_kind = "http " + std::to_string(status);
    out.error = "HTTP " + std::to_string(status) + ": " + error_message(error_body);
    return out;
  }
  if (!state.done()) {
    out.error_kind = "incomplete stream";
    out.error = "the stream ended without data: [DONE]";
    return out;
  }
  if (!out.usage_reported) out.completion_tokens = out.text_chunks;
  out.ok = true;
  return out;
}

ModelLookup first_model(const ServerConfig& server) {
  ModelLookup out;
  httplib::Client cli(server.host, server.port);
  configure(cli, server);
  const httplib::Result res = cli.Get("/v1/models", base_headers(server));
  if (!res) {
    out.error = describe(res.error());
    return out;
  }
  out.reached = true;
  out.http_status = res->status;
  if (res->status != 200) {
    out.error = "HTTP " + std::to_string(res->status) + ": " + error_message(res->body);
    return out;
  }
  const json j = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("data") && j["data"].is_array()) {
    for (const json& m : j["data"]) {
      if (m.is_object() && m.contains("id") && m["id"].is_string()) {
        out.model = m["id"].get<std::string>();
        return out;
      }
    }
    out.error = "the server lists no model";
  } else {
    out.error = "not an OpenAI model list: " + res->body.substr(0, 120);
  }
  return out;
}

}  // namespace shardlm::serve_bench
