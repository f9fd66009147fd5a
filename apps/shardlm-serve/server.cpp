// Server: routes, authentication, the completion handler (JSON or Server-Sent Events), errors,
// the access log and the drain on stop().
#include "apps/shardlm-serve/server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdio>
#include <ctime>
#include <thread>

#include "apps/shardlm-serve/api_error.h"
#include "apps/shardlm-serve/completion_runner.h"
#include "apps/shardlm-serve/openai_request.h"
#include "apps/shardlm-serve/openai_response.h"
#include "apps/shardlm-serve/peer_watch.h"
#include "runtime/core/status.h"

namespace shardlm::serve {

struct Server::Model {
  std::shared_ptr<ServingLoop> loop;
  std::shared_ptr<const ModelText> text;
  std::string name;
  int64_t created = 0;
};

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(to_text(error_body(e)), "application/json");
}

// Counts a completion request while it is answered (streams included).
class InFlight {
 public:
  explicit InFlight(std::atomic<int64_t>& n) : n_(n) { value_ = n_.fetch_add(1) + 1; }
  ~InFlight() { n_.fetch_sub(1); }
  int64_t value() const { return value_; }

 private:
  std::atomic<int64_t>& n_;
  int64_t value_;
};

std::string sse(const Json& j) {
  return "data: " + to_text(j) + "\n\n";
}

}  // namespace

Server::Server(ServerOptions options)
    : options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  // Streaming clients hold a thread each for the length of their request.
  const size_t threads = static_cast<size_t>(std::max<int64_t>(options_.max_in_flight, 8) + 8);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(30, 0);
  // Each streamed token is one small write: send it now rather than wait for the last ACK
  // (Nagle's algorithm would hold it back up to a delayed-ACK timeout). Accepted sockets inherit
  // the option from the listening one.
  http_->set_tcp_nodelay(true);
  http_->set_socket_options([this](int fd) {
    const int one = 1;
    // SO_REUSEADDR only (not SO_REUSEPORT): a restart can take over a port in TIME_WAIT, while a
    // second server on a port that is in use still fails with a clear error.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    listen_fd_ = fd;
  });
  install_routes();
}

Server::~Server() {
  stop();
}

int Server::bind() {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
  } else if (!http_->bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port < 0) {
    fail(StatusCode::kIo, "cannot listen on " + options_.host + ":" +
                              std::to_string(options_.port) +
                              " (in use, or not an address of this machine); choose --host/--port");
  }
  // The HTTP library listens with a backlog of 5: a burst of more simultaneous connections than
  // that overflows the accept queue, and the kernel drops their SYNs, which clients retry only
  // after a second. listen() on a listening socket resets its backlog (capped at somaxconn).
  if (listen_fd_ >= 0) ::listen(listen_fd_, SOMAXCONN);
  return port;
}

void Server::serve() {
  http_->listen_after_bind();
}

void Server::set_model(std::shared_ptr<ServingLoop> loop, std::shared_ptr<const ModelText> text,
                       std::string name) {
  auto m = std::make_shared<Model>();
  m->loop = std::move(loop);
  m->text = std::move(text);
  m->name = std::move(name);
  m->created = static_cast<int64_t>(std::time(nullptr));
  std::lock_guard<std::mutex> lock(mu_);
  model_ = std::move(m);
}

void Server::set_load_error(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  load_error_ = message;
}

std::shared_ptr<const Server::Model> Server::model() const {
  std::lock_guard<std::mutex> lock(mu_);
  return model_;
}

bool Server::shutdown_expired() const {
  return draining_.load() && now_ns() > drain_deadline_ns_.load();
}

void Server::stop() {
  if (!draining_.exchange(true)) {
    drain_deadline_ns_ = now_ns() + static_cast<int64_t>(options_.shutdown_seconds * 1e9);
  }
  // Running requests finish or, past the deadline, are cancelled (shutdown_expired()).
  while (in_flight_.load() > 0 && now_ns() < drain_deadline_ns_.load() + 2'000'000'000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  http_->stop();
}

void Server::install_routes() {
  httplib::Server& s = *http_;

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!options_.api_key.empty() && req.path.rfind("/v1/", 0) == 0 &&
        req.get_header_value("Authorization") != "Bearer " + options_.api_key) {
      send_error(res, ApiError(401,
                               "Incorrect or missing API key: send the header "
                               "'Authorization: Bearer <key>' with the server's key.",
                               "invalid_request_error", "", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Statuses httplib sets itself (no route, body too large, ...) get OpenAI's error object.
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send_error(res, ApiError(404,
                               "no route " + req.method + " " + req.path +
                                   "; see GET /v1/models, POST /v1/chat/completions, "
                                   "POST /v1/completions, GET /health, GET /metrics",
                               "invalid_request_error", "", "not_found"));
    } else if (res.status == 413) {
      send_error(res, ApiError(413,
                               "the request body is larger than the server's limit of " +
                                   std::to_string(options_.max_body_bytes) + " bytes",
                               "invalid_request_error", "", "payload_too_large"));
    } else {
      send_error(
          res, ApiError(res.status,
                        "the request could not be served (HTTP " + std::to_string(res.status) + ")",
                        "invalid_request_error"));
    }
  });

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, ApiError(500, "internal server error", "internal_error"));
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const auto m = model();
    if (m && !draining_.load()) {
      res.set_content(R"({"status":"ok"})", "application/json");
      return;
    }
    res.status = 503;
    std::string why;
    {
      std::lock_guard<std::mutex> lock(mu_);
      why = load_error_;
    }
    Json body{{"status", draining_.load() ? "shutting down" : why.empty() ? "loading" : "error"}};
    if (!why.empty()) body["message"] = why;
    res.set_content(to_text(body), "application/json");
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const auto m = model();
    const StepEngineStats st = m ? m->loop->stats() : StepEngineStats{};
    res.set_content(metrics_.render(st, in_flight_.load()), "text/plain; version=0.0.4");
  });

  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const auto m = model();
    if (!m) {
      send_error(res, ApiError(503, "the model is still loading", "service_unavailable"));
      return;
    }
    res.set_content(to_text(model_list(m->name, m->created, m->loop->n_ctx())), "application/json");
  });

  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(req, res, static_cast<int>(Endpoint::kChat));
  });
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(req, res, static_cast<int>(Endpoint::kCompletions));
  });
}

void Server::handle_completion(const httplib::Request& req, httplib::Response& res,
                               int endpoint_int) {
  const Endpoint endpoint = static_cast<Endpoint>(endpoint_int);
  const Clock::time_point t0 = Clock::now();
  auto guard = std::make_shared<InFlight>(in_flight_);
  // What the access log and the metrics say about this request.
  struct Outcome {
    int status = 200;
    int64_t prompt = 0, completion = 0;
    double ttft = -1;
    std::vector<double> itl;
  };
  auto finish = [this, t0, path = req.path, peer = req.remote_addr](const Outcome& o) {
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    metrics_.record(o.status, o.prompt, o.completion, o.ttft, o.itl, secs);
    if (options_.access_log) {
      std::fprintf(stderr,
                   "shardlm-serve: %s POST %s %d prompt=%lld completion=%lld ttft=%.3fs "
                   "total=%.3fs\n",
                   peer.c_str(), path.c_str(), o.status, static_cast<long long>(o.prompt),
                   static_cast<long long>(o.completion), o.ttft, secs);
    }
  };

  try {
    const auto m = model();
    if (draining_.load()) {
      throw ApiError(503, "the server is shutting down", "service_unavailable");
    }
    if (!m) throw ApiError(503, "the model is still loading; retry shortly", "service_unavailable");
    if (guard->value() > options_.max_in_flight) {
      throw ApiError(429,
                     "the server is answering " + std::to_string(options_.max_in_flight) +
                         " requests, its limit; retry shortly",
                     "rate_limit_exceeded", "", "too_many_requests");
    }
    const CompletionRequest r = parse_completion_request(req.body, endpoint, m->text->defaults());
    if (!r.model.empty() && r.model != m->name) {
      throw ApiError(
          404, "The model '" + r.model + "' does not exist; this server serves '" + m->name + "'",
          "invalid_request_error", "model", "model_not_found");
    }
    CompletionRunner runner(*m->loop, *m->text, options_.stream_interval);
    const auto prompts = runner.prompts(r);

    ResponseContext ctx;
    ctx.id = std::string(endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") +
             std::to_string(next_id_.fetch_add(1)) + "-" + std::to_string(std::time(nullptr));
    ctx.created = static_cast<int64_t>(std::time(nullptr));
    ctx.model = m->name;
    ctx.endpoint = endpoint;
    ctx.logprobs = r.logprobs;
    ctx.token_text = [text = m->text](int32_t id) {
      return text->tokenizer().decode({id}, /*skip_special_tokens=*/false);
    };

    if (!r.stream) {
      // Nothing is written until the end, so a hang-up is found by watching the socket.
      const PeerWatch peer(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
      const RunResult run = runner.run(
          r, prompts, [](const ChoiceDelta&) { return true; },
          [this, &peer] { return shutdown_expired() || peer.gone(); });
      Outcome o{200, run.prompt_tokens, run.completion_tokens, run.ttft_seconds,
                run.inter_token_seconds};
      if (run.client_gone && peer.gone()) {
        o.status = 499;  // the client closed the connection: nobody reads a response
        res.status = 499;
        res.set_content("", "text/plain");
      } else {
        res.set_content(to_text(full_response(ctx, run)), "application/json");
      }
      finish(o);
      return;
    }

    // Streaming: the provider runs on this connection's thread once the headers are out.
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, r, prompts, ctx, m, guard, finish](
                                                              size_t, httplib::DataSink& sink) {
      CompletionRunner run_on(*m->loop, *m->text, options_.stream_interval);
      std::vector<bool> started(prompts.size() * static_cast<size_t>(r.n), false);
      Outcome o;
      try {
        const RunResult run = run_on.run(
            r, prompts,
            [&](const ChoiceDelta& d) {
              const bool first = !started[static_cast<size_t>(d.index)];
              started[static_cast<size_t>(d.index)] = true;
              const std::string ev = sse(delta_chunk(ctx, d, first));
              return sink.write(ev.data(), ev.size());
            },
            [this] { return shutdown_expired(); });
        o = {200, run.prompt_tokens, run.completion_tokens, run.ttft_seconds,
             run.inter_token_seconds};
        if (run.client_gone) {
          o.status = 499;  // the client closed the connection (nginx's convention)
        } else {
          std::string tail;
          if (r.include_usage) {
            tail += sse(usage_chunk(ctx, run.prompt_tokens, run.completion_tokens));
          }
          tail += "data: [DONE]\n\n";
          sink.write(tail.data(), tail.size());
        }
      } catch (const ApiError& e) {
        o.status = e.status();
        const std::string ev = sse(error_body(e)) + "data: [DONE]\n\n";
        sink.write(ev.data(), ev.size());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "shardlm-serve: request failed: %s\n", e.what());
        o.status = 500;
        const std::string ev =
            sse(error_body(ApiError(500, "internal server error", "internal_error"))) +
            "data: [DONE]\n\n";
        sink.write(ev.data(), ev.size());
      }
      sink.done();
      finish(o);
      return true;
    });
  } catch (const ApiError& e) {
    send_error(res, e);
    finish({e.status(), 0, 0, -1, {}});
  } catch (const Error& e) {
    // A failed step (a rank error), a full pool that cannot admit: no internal detail to the
    // client, the reason in the server's log.
    std::fprintf(stderr, "shardlm-serve: request failed (%s): %s\n", status_name(e.code()),
                 e.what());
    send_error(res, ApiError(500, "internal server error", "internal_error"));
    finish({500, 0, 0, -1, {}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardlm-serve: request failed: %s\n", e.what());
    send_error(res, ApiError(500, "internal server error", "internal_error"));
    finish({500, 0, 0, -1, {}});
  }
}

}  // namespace shardlm::serve
