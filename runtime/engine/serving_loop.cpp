// ServingLoop: a driver thread stepping the StepEngine; per-request token queues.
#include "runtime/engine/serving_loop.h"

#include "runtime/core/status.h"

namespace shardlm {

bool RequestStream::next(int32_t* token) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !tokens_.empty() || done_; });
  if (!tokens_.empty()) {
    *token = tokens_.front();
    tokens_.pop_front();
    return true;
  }
  if (error_) std::rethrow_exception(error_);
  return false;
}

RequestStream::Event RequestStream::next_for(int32_t* token, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !tokens_.empty() || done_; })) {
    return Event::kTimeout;
  }
  if (!tokens_.empty()) {
    *token = tokens_.front();
    tokens_.pop_front();
    return Event::kToken;
  }
  if (error_) std::rethrow_exception(error_);
  return Event::kEnd;
}

bool RequestStream::take_logprob(TokenLogprob* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (logprobs_.empty()) return false;
  *out = std::move(logprobs_.front());
  logprobs_.pop_front();
  return true;
}

void RequestStream::cancel() {
  if (loop_) loop_->cancel(id_);
}

ServingLoop::ClientLock::ClientLock(ServingLoop& loop) : loop_(loop) {
  loop_.clients_waiting_.fetch_add(1);
  lock_ = std::unique_lock<std::mutex>(loop_.mu_);
}

ServingLoop::ClientLock::~ClientLock() {
  lock_.unlock();
  if (loop_.clients_waiting_.fetch_sub(1) == 1) {
    std::lock_guard<std::mutex> lock(loop_.mu_);  // no lost wake-up: the driver waits under mu_
    loop_.clients_cv_.notify_all();
  }
}

ServingLoop::ServingLoop(std::shared_ptr<Engine> engine, const StepEngineOptions& options,
                         std::shared_ptr<Engine> draft)
    : engine_ptr_(std::move(engine)),
      draft_ptr_(std::move(draft)),
      engine_(*engine_ptr_, options, draft_ptr_.get()),
      n_ctx_(engine_.n_ctx()) {
  driver_ = std::thread([this] { drive(); });
}

ServingLoop::~ServingLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  driver_.join();
}

std::shared_ptr<RequestStream> ServingLoop::submit(TokenRequest request) {
  auto stream = std::make_shared<RequestStream>();
  stream->loop_ = this;
  std::weak_ptr<RequestStream> weak = stream;
  request.on_token = [weak](int32_t token) {
    if (auto s = weak.lock()) {
      {
        std::lock_guard<std::mutex> lock(s->mu_);
        s->tokens_.push_back(token);
      }
      s->cv_.notify_one();
    }
    return true;
  };
  if (request.top_logprobs >= 0) {
    request.on_logprob = [weak](const TokenLogprob& lp) {
      if (auto s = weak.lock()) {
        std::lock_guard<std::mutex> lock(s->mu_);
        s->logprobs_.push_back(lp);
      }
    };
  }
  {
    ClientLock lock(*this);
    if (failure_) std::rethrow_exception(failure_);
    if (stopping_) fail(StatusCode::kInvalidArg, "the serving loop is shutting down");
    stream->id_ = engine_.submit(std::move(request));
    streams_.emplace(stream->id_, stream);
  }
  work_cv_.notify_one();
  return stream;
}

void ServingLoop::cancel(RequestId id) {
  {
    ClientLock lock(*this);
    engine_.cancel(id);
  }
  work_cv_.notify_one();
}

int64_t ServingLoop::cached_prefix_tokens(std::span<const int32_t> tokens) {
  ClientLock lock(*this);
  return engine_.cached_prefix_tokens(tokens);
}

StepEngineStats ServingLoop::stats() {
  ClientLock lock(*this);
  return engine_.stats();
}

void ServingLoop::drive() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || engine_.has_work(); });
    if (stopping_) {
      // Whatever is left ends as cancelled (the step below applies it): no client waits forever.
      for (auto& [id, s] : streams_) engine_.cancel(id);
    }
    std::vector<RequestId> ended;
    std::exception_ptr error;
    try {
      ended = engine_.step();
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      failure_ = error;
      for (auto& [id, s] : streams_) {
        {
          std::lock_guard<std::mutex> sl(s->mu_);
          s->error_ = error;
          s->done_ = true;
        }
        s->cv_.notify_all();
      }
      streams_.clear();
      return;  // the engine is unusable after a rank error
    }
    for (RequestId id : ended) {
      auto it = streams_.find(id);
      if (it == streams_.end()) continue;
      std::shared_ptr<RequestStream> s = it->second;
      streams_.erase(it);
      {
        std::lock_guard<std::mutex> sl(s->mu_);
        s->result_ = engine_.take_result(id);
        s->done_ = true;
      }
      s->cv_.notify_all();
    }
    if (stopping_ && streams_.empty()) return;
    // Let announced clients in before the next step.
    clients_cv_.wait(lock, [&] { return clients_waiting_.load() == 0; });
  }
}

}  // namespace shardlm
