// One streaming request to an OpenAI-compatible server, timed: POST /v1/chat/completions
// (`messages: [{role: user, content: prompt}]`) or POST /v1/completions (`prompt`) with
// `"stream": true, "stream_options": {"include_usage": true}`, the Server-Sent Events body read as
// it arrives (sse_parser.h). A text-carrying chunk is one whose choices[0].delta.content (chat;
// also delta.reasoning_content or delta.reasoning, where reasoning servers put thinking text) or
// choices[0].text (completions) is non-empty. Also the model lookup (GET /v1/models).
// Not the worker threads and not the report (main.cpp, report.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm::serve_bench {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;     // sent as "Authorization: Bearer KEY" when not empty
  double timeout_s = 300;  // the whole request, connect to [DONE]
};

enum class Endpoint { kChat, kCompletions };

struct StreamRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model, prompt;
  int max_tokens = 64;
  double temperature = 0;
  bool ignore_eos = false;  // "ignore_eos": true (vLLM's extension): exactly max_tokens tokens
};

struct StreamResult {
  bool ok = false;
  std::string error;          // why it failed: "HTTP 401: ...", "connection: ...", "timeout ..."
  std::string error_kind;     // a short key to count failures by: "http 401", "connection", ...
  int http_status = 0;        // 0 when no response arrived
  double ttft_s = -1;         // request sent -> first text-carrying chunk; -1 when none came
  std::vector<double> itl_s;  // gaps between successive text-carrying chunks
  double total_s = 0;         // request sent -> end of the body
  int64_t text_chunks = 0;    // text-carrying chunks seen
  int64_t completion_tokens = 0;  // usage.completion_tokens, else text_chunks
  bool usage_reported = false;    // completion_tokens came from the server's usage
};

// The JSON body of `r` (compact).
std::string request_body(const StreamRequest& r);
// "/v1/chat/completions" or "/v1/completions".
const char* endpoint_path(Endpoint e);

// Sends `r` and reads its stream to the end. Never throws for what the server or the network
// does: failures come back in StreamResult::error.
StreamResult run_stream_request(const ServerConfig& server, const StreamRequest& r);

struct ModelLookup {
  bool reached = false;  // false: no HTTP answer at all (connection refused, timeout)
  int http_status = 0;
  std::string model;  // the first id of GET /v1/models, "" when none
  std::string error;  // why there is no model
};

// GET /v1/models and the first model id.
ModelLookup first_model(const ServerConfig& server);

}  // namespace shardlm::serve_bench
