// The JSON bodies shardlm-serve answers with, in OpenAI's shapes: chat.completion and
// text_completion objects, their streaming chunks (chat.completion.chunk; text_completion),
// the usage chunk, logprobs in the chat and the legacy completions forms, the model list, and
// the error object. Serialized with invalid UTF-8 replaced, so a partial character in a single
// token's text can never fail a response. Not here: HTTP or generation.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/shardlm-serve/api_error.h"
#include "apps/shardlm-serve/completion_runner.h"
#include "apps/shardlm-serve/openai_request.h"

namespace shardlm::serve {

using Json = nlohmann::ordered_json;
using TokenTextFn = std::function<std::string(int32_t)>;

struct ResponseContext {
  std::string id;  // chatcmpl-... / cmpl-...
  int64_t created = 0;
  std::string model;
  Endpoint endpoint = Endpoint::kChat;
  bool logprobs = false;
  TokenTextFn token_text;
};

std::string to_text(const Json& j);  // compact, invalid UTF-8 replaced

Json error_body(const ApiError& e);
Json usage(int64_t prompt_tokens, int64_t completion_tokens);
// The whole (non-streamed) response.
Json full_response(const ResponseContext& ctx, const RunResult& run);
// One streamed chunk for a delta; `first` adds the assistant role (chat).
Json delta_chunk(const ResponseContext& ctx, const ChoiceDelta& d, bool first);
// The last chunk of a stream with stream_options.include_usage: no choices, the usage.
Json usage_chunk(const ResponseContext& ctx, int64_t prompt_tokens, int64_t completion_tokens);
Json model_list(const std::string& model, int64_t created, int64_t max_model_len);

}  // namespace shardlm::serve
