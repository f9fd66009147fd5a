// CompletionRunner: one API request's choices run on the shared ServingLoop. It turns the
// request into token prompts (the chat template, or the completion prompt encoded), refuses a
// prompt that does not fit the context with the numbers, submits n choices per prompt (they
// share the prompt's blocks through the prefix cache), and reads their tokens on the calling
// thread: UTF-8-safe text pieces (StreamDecoder), stop strings (StopStringFilter), logprobs,
// finish reasons. Deltas go to a callback as they become available, so the same code serves
// streaming and non-streaming responses. When the callback or `cancelled` says the client is
// gone, every choice is cancelled and its blocks return to the pool.
// Not here: HTTP, JSON responses (openai_response.h), metrics.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "apps/shardlm-serve/openai_request.h"
#include "runtime/engine/model_text.h"
#include "runtime/engine/serving_loop.h"

namespace shardlm::serve {

// Text (and the logprobs of the tokens behind it) a choice released; finish_reason is set on
// the choice's last delta ("stop" or "length").
struct ChoiceDelta {
  int index = 0;
  std::string text;
  std::vector<TokenLogprob> logprobs;
  std::string finish_reason;
};

struct ChoiceResult {
  std::string text;
  std::string finish_reason;
  std::vector<TokenLogprob> logprobs;
  int64_t n_tokens = 0;  // tokens generated (the stop token excluded)
};

struct RunResult {
  std::vector<ChoiceResult> choices;        // index = prompt * n + choice
  int64_t prompt_tokens = 0;                // all prompts, each counted once
  int64_t completion_tokens = 0;            // all choices
  double ttft_seconds = -1;                 // to the first token of any choice
  std::vector<double> inter_token_seconds;  // gaps between a choice's successive tokens
  bool client_gone = false;
};

class CompletionRunner {
 public:
  // stream_interval: the fewest tokens per delta (the last delta of a choice may hold fewer);
  // tokens that are ready together always share a delta.
  CompletionRunner(ServingLoop& loop, const ModelText& text, int64_t stream_interval = 1)
      : loop_(loop), text_(text), stream_interval_(std::max<int64_t>(stream_interval, 1)) {}

  // Token prompts of the request. ApiError 400: no tokenizer / template, an empty prompt, or a
  // prompt (plus max_tokens) longer than the context.
  std::vector<std::vector<int32_t>> prompts(const CompletionRequest& r) const;

  // Runs every choice to its end. on_delta returns false when the client is gone; `cancelled`
  // is polled while waiting (shutdown, a closed connection). ApiError 400 for ids the engine
  // refuses; other errors propagate.
  RunResult run(const CompletionRequest& r, const std::vector<std::vector<int32_t>>& prompts,
                const std::function<bool(const ChoiceDelta&)>& on_delta,
                const std::function<bool()>& cancelled);

  // The text of one token for logprobs (may hold U+FFFD for a partial character).
  std::string token_text(int32_t id) const;

 private:
  ServingLoop& loop_;
  const ModelText& text_;
  int64_t stream_interval_ = 1;
};

}  // namespace shardlm::serve
