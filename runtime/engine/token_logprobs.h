// A generated token's log-probability under the model and its most likely alternatives, as
// OpenAI's and vLLM's `logprobs` report them: log-softmax of the raw logits, before temperature,
// penalties and the sampler chain. Not here: where the rows come from (step_engine.cpp) or how
// an API prints them (apps/shardlm-serve).
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace shardlm {

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // (id, logprob), most likely first
};

// The most alternatives a request may ask for (OpenAI's limit).
constexpr int32_t kMaxTopLogprobs = 20;

// logits [n_vocab]; token in range; top_n in [0, kMaxTopLogprobs] (ties: lower id first).
TokenLogprob token_logprob(std::span<const float> logits, int32_t token, int32_t top_n);

}  // namespace shardlm
