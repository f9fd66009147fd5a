// What one generation call asks for and what it reports: the request (sampler chain, max tokens,
// stop ids and stop strings), the streaming callback type, and the result with its timings.
// Shared by Session (session.h) and the C ABI shims. No logic here beyond names.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/engine/sampler.h"

namespace shardlm {

// Values mirror shardlm_finish_reason in shardlm.h: never renumber.
enum class FinishReason : int32_t {
  kNone = 0,
  kStopToken = 1,    // a stop id (eos, end-of-turn, or one of request.stop_ids)
  kStopString = 2,   // one of request.stop_strings appeared in the text
  kMaxTokens = 3,    // request.max_new_tokens reached
  kContextFull = 4,  // the session's context (KV capacity) is full
  kCallback = 5,     // the streaming callback asked to stop
  kCancelled = 6,    // Session::cancel() from another thread (or a signal handler)
};
const char* finish_reason_name(FinishReason reason);

struct GenerationRequest {
  SamplerParams sampling;
  int64_t max_new_tokens = 256;  // < 0: until a stop or a full context
  bool ignore_eos = false;   // do not stop on the model's stop ids (stop_ids below still apply)
  std::vector<int32_t> stop_ids;
  std::vector<std::string> stop_strings;
};

// Called once per generated token (the stop token excluded) with the text that token releases:
// possibly empty while a UTF-8 character or a possible stop string is incomplete; and once more
// with token -1 at the end when held-back text remains. Return false to stop.
using StreamFn = std::function<bool(int32_t token, std::string_view text)>;

struct GenerationResult {
  FinishReason finish = FinishReason::kNone;
  std::vector<int32_t> tokens;  // generated ids, the stop id excluded
  std::string text;             // the reply text (without a matched stop string and after)
  std::string stop_string;      // the stop string that matched, if any
  int64_t n_prompt = 0;         // context tokens before generation
  int64_t n_reused = 0;         // of those, already in the KV cache and kept
  int64_t n_prefilled = 0;      // of those, evaluated by this call (n_prompt - n_reused)
  int64_t n_decode_steps = 0;   // one-token forwards after the first token
  double prefill_seconds = 0;   // prefill forwards + first sample
  double ttft_seconds = 0;      // call start to the first token (template, tokenizer included)
  double decode_seconds = 0;    // first token to the end
};

}  // namespace shardlm
