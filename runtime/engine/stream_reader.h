// Reading one request's token stream (serving_loop.h) on the caller's thread: tokens become
// UTF-8 text in whole characters (StreamDecoder), stop strings are matched across tokens and held
// back (StopStringFilter), the caller's StreamFn sees every piece, and the request is cancelled
// when the callback, a stop string or the caller's cancel flag says so. Shared by Session (which
// also records the tokens in its history) and the C ABI's request calls. Not the sampling (the
// step engine does that) and not the history bookkeeping (session.h).
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "runtime/engine/generation.h"
#include "runtime/engine/model_text.h"
#include "runtime/engine/serving_loop.h"

namespace shardlm {

// Reads `stream` to its end and returns the result (text, tokens, finish reason, counts and
// timings from t0). `on_token(id)` is called for every generated token and for a final stop
// token (kStopToken), before the text callback; `cancel` (may be null) is polled between tokens.
// A request that was stopped here is cancelled and drained: later tokens are not part of it.
GenerationResult read_stream(RequestStream& stream, const GenerationRequest& request,
                             const ModelText& text, const StreamFn& on_text,
                             const std::atomic<bool>* cancel,
                             const std::function<void(int32_t)>& on_token,
                             std::chrono::steady_clock::time_point t0, int64_t n_prompt);

}  // namespace shardlm
