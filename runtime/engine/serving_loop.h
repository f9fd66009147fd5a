// ServingLoop: the step engine shared by many threads. One driver thread owns the StepEngine and
// steps it while there is work; client threads submit requests and read each request's tokens
// from its RequestStream as they are generated, so requests from different threads run in the
// same steps (continuous batching) instead of taking turns. Token delivery is a queue per
// request: the client's own thread turns tokens into text, applies stop strings and calls its
// callback, and cancels the request when it wants no more (the driver may have generated a
// token or two past that point; they are discarded, never part of the result).
// A failing step (a rank error) ends every live request with that error and marks the loop
// failed; later submits rethrow it. Not here: text (session.h), the policy (scheduler.h).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "runtime/engine/step_engine.h"

namespace shardlm {

class ServingLoop;

// One request's tokens, in order, as the driver produces them. Shared by the client and the loop.
class RequestStream {
 public:
  // Blocks until the next generated token (true, *token set) or the end of the request (false:
  // then result() is final). Rethrows the error that ended the loop, if any.
  bool next(int32_t* token);
  // The same, waiting at most `timeout`: kTimeout when neither came (to poll a cancel flag).
  enum class Event { kToken, kEnd, kTimeout };
  Event next_for(int32_t* token, std::chrono::milliseconds timeout);
  // The log-probability of the token next() returned last (requests with top_logprobs >= 0):
  // true and *out set, false when the request did not ask for them.
  bool take_logprob(TokenLogprob* out);
  // Asks the driver to stop this request at the next step (any thread; idempotent).
  void cancel();
  // The request's result once next() returned false (tokens: all the driver generated).
  const TokenResult& result() const { return result_; }

 private:
  friend class ServingLoop;
  ServingLoop* loop_ = nullptr;
  RequestId id_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int32_t> tokens_;
  std::deque<TokenLogprob> logprobs_;  // pushed just before each token (on_logprob)
  bool done_ = false;
  std::exception_ptr error_;
  TokenResult result_;
};

class ServingLoop {
 public:
  // `engine` must have a paged KV pool (EngineOptions::kv_blocks). Starts the driver thread.
  // `draft`: the draft model for options.speculation kDraft (StepEngine's rules), else null.
  ServingLoop(std::shared_ptr<Engine> engine, const StepEngineOptions& options,
              std::shared_ptr<Engine> draft = nullptr);
  ~ServingLoop();  // cancels what is left and joins the driver
  ServingLoop(const ServingLoop&) = delete;
  ServingLoop& operator=(const ServingLoop&) = delete;

  // Queues `request` (its on_token is replaced by the stream). Throws what StepEngine::submit
  // throws (bad ids, a request that can never fit) on the calling thread; nothing is queued then.
  std::shared_ptr<RequestStream> submit(TokenRequest request);
  StepEngineStats stats();
  int64_t n_ctx() const { return n_ctx_; }
  Engine& engine() const { return *engine_ptr_; }
  // Leading tokens of `tokens` the prefix cache holds now.
  int64_t cached_prefix_tokens(std::span<const int32_t> tokens);

 private:
  friend class RequestStream;
  void cancel(RequestId id);
  void drive();
  // A client's hold on mu_: announced first, so the driver yields between steps (a mutex gives
  // no fairness: without this the driver, stepping back to back, would starve submits).
  class ClientLock {
   public:
    explicit ClientLock(ServingLoop& loop);
    ~ClientLock();

   private:
    ServingLoop& loop_;
    std::unique_lock<std::mutex> lock_;
  };

  std::mutex mu_;  // guards the step engine and the maps below
  std::condition_variable work_cv_;
  std::condition_variable clients_cv_;  // the driver waits here while clients hold their turn
  std::atomic<int> clients_waiting_{0};
  std::shared_ptr<Engine> engine_ptr_;
  std::shared_ptr<Engine> draft_ptr_;
  StepEngine engine_;
  int64_t n_ctx_ = 0;
  std::map<RequestId, std::shared_ptr<RequestStream>> streams_;
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::thread driver_;
};

}  // namespace shardlm
