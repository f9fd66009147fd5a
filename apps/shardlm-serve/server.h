// Server: shardlm-serve's HTTP side (cpp-httplib) over one model's ServingLoop. Routes:
// POST /v1/chat/completions and /v1/completions (JSON or Server-Sent Events), GET /v1/models,
// GET /health (503 while the model loads, 200 when ready), GET /metrics (Prometheus text).
// Errors are OpenAI error objects with the right status (400, 401, 404, 413, 429, 503, 500
// without internal detail). An API key, when set, guards /v1/*. One access-log line per
// completion request on stderr. stop() drains: no new requests, running ones get the shutdown
// timeout to finish and are then cancelled. Not here: request parsing (openai_request.h),
// generation (completion_runner.h), the program's flags (main.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "apps/shardlm-serve/metrics.h"
#include "runtime/engine/model_text.h"
#include "runtime/engine/serving_loop.h"

namespace httplib {
class Server;
class Request;
class Response;
}  // namespace httplib

namespace shardlm::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0: any free port (bind() returns it)
  std::string api_key;               // "" = no key
  size_t max_body_bytes = 4u << 20;  // larger bodies: 413
  int64_t max_in_flight = 128;       // completion requests at once; more: 429
  double shutdown_seconds = 30;      // stop(): time running requests get to finish
  int64_t stream_interval = 1;       // fewest tokens per streamed chunk (CompletionRunner)
  bool access_log = true;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port. Throws Error(kIo) naming host:port.
  int bind();
  // Accepts and answers until stop() (blocking; call bind() first).
  void serve();
  // The model is ready: completion routes work and /health answers 200.
  void set_model(std::shared_ptr<ServingLoop> loop, std::shared_ptr<const ModelText> text,
                 std::string name);
  // Loading failed: /health answers 503 with this message from now on.
  void set_load_error(const std::string& message);
  // Drains (see the file comment) and stops serve(). Safe from any thread, once or more.
  void stop();

  int64_t in_flight() const { return in_flight_.load(); }

 private:
  struct Model;
  void install_routes();
  void handle_completion(const httplib::Request& req, httplib::Response& res, int endpoint);
  bool shutdown_expired() const;
  std::shared_ptr<const Model> model() const;

  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  mutable std::mutex mu_;
  std::shared_ptr<const Model> model_;
  std::string load_error_;
  Metrics metrics_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> drain_deadline_ns_{0};
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int> listen_fd_{-1};  // the listening socket, once created (see bind())
};

}  // namespace shardlm::serve
