// The request bodies of POST /v1/chat/completions and POST /v1/completions, parsed and checked
// into one CompletionRequest. Field names, types and ranges follow OpenAI's API (with vLLM's
// extensions top_k, min_p, repetition_penalty, ignore_eos and chat_template_kwargs); unknown
// fields are ignored as OpenAI does; any other problem is an ApiError 400 naming the field.
// Fields the request leaves out take the pack's generation defaults (generation_config.json),
// as vLLM does. Not here: tokenizing, the context check (completion_runner.h) or responses.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/engine/sampler.h"

namespace shardlm::serve {

enum class Endpoint { kChat, kCompletions };

// One prompt of a completions request: text, or token ids.
struct PromptInput {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;
};

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;  // "" when absent
  // Chat: the messages (roles checked, content normalized to a string) and the template's
  // extra variables (chat_template_kwargs, e.g. enable_thinking).
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
  // Completions: one or more prompts (a list gives choices for each, n per prompt).
  std::vector<PromptInput> prompts;
  SamplerParams sampling;
  bool seeded = false;      // the request gave a seed
  int64_t max_tokens = -1;  // -1: until a stop or the end of the context
  std::vector<std::string> stop;
  int n = 1;  // choices per prompt
  bool logprobs = false;
  int top_logprobs = 0;  // alternatives per token when logprobs
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;
};

// Most choices per prompt a request may ask for.
constexpr int kMaxChoices = 16;

// Throws ApiError 400 for malformed JSON, wrong types, unknown roles and out-of-range values.
// `defaults`: the pack's sampling defaults.
CompletionRequest parse_completion_request(std::string_view body, Endpoint endpoint,
                                           const SamplerParams& defaults);

}  // namespace shardlm::serve
