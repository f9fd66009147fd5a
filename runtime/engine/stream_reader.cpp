// read_stream(): the per-token loop of a request read on the caller's thread.
#include "runtime/engine/stream_reader.h"

#include <algorithm>
#include <optional>

#include "runtime/engine/stop_strings.h"
#include "runtime/text/stream_decoder.h"

namespace shardlm {

GenerationResult read_stream(RequestStream& stream, const GenerationRequest& request,
                             const ModelText& text, const StreamFn& on_text,
                             const std::atomic<bool>* cancel,
                             const std::function<void(int32_t)>& on_token,
                             std::chrono::steady_clock::time_point t0, int64_t n_prompt) {
  using Clock = std::chrono::steady_clock;
  GenerationResult res;
  res.n_prompt = n_prompt;
  const bool has_text = text.has_tokenizer();
  std::optional<text::StreamDecoder> decoder;
  if (has_text) decoder.emplace(text.tokenizer(), /*skip_special_tokens=*/false);
  StopStringFilter filter(request.stop_strings);
  auto emit = [&](int32_t token, const std::string& piece) -> bool {
    res.text += piece;
    return !on_text || on_text(token, piece);
  };

  // cancel is polled between tokens: it must stay a plain atomic store for its callers.
  Clock::time_point t_first{};
  bool stopped_here = false;
  for (;;) {
    int32_t next = -1;
    const RequestStream::Event ev = stream.next_for(&next, std::chrono::milliseconds(20));
    if (ev == RequestStream::Event::kEnd) break;
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      res.finish = FinishReason::kCancelled;
      stopped_here = true;
      break;
    }
    if (ev == RequestStream::Event::kTimeout) continue;
    if (res.tokens.empty()) t_first = Clock::now();
    if (on_token) on_token(next);
    res.tokens.push_back(next);
    std::string piece = has_text ? filter.put(decoder->put(next)) : std::string();
    if (!emit(next, piece)) {
      res.finish = FinishReason::kCallback;
      stopped_here = true;
      break;
    }
    if (filter.stopped()) {
      res.finish = FinishReason::kStopString;
      stopped_here = true;
      break;
    }
  }
  if (stopped_here) {
    stream.cancel();
    int32_t ignored;
    while (stream.next(&ignored)) {  // tokens made before the cancel landed are not ours
    }
  }
  const TokenResult& done = stream.result();
  if (!stopped_here) {
    res.finish = done.finish;
    if (done.finish == FinishReason::kStopToken && on_token) on_token(done.stop_token);
  }
  res.n_reused = std::min(done.n_cached_prompt, res.n_prompt);
  res.n_prefilled = res.n_prompt - res.n_reused;
  res.n_decode_steps = res.tokens.empty() ? 0 : static_cast<int64_t>(res.tokens.size()) - 1;
  const auto t_end = Clock::now();
  if (res.tokens.empty()) {
    res.prefill_seconds = std::chrono::duration<double>(t_end - t0).count();
  } else {
    res.prefill_seconds = std::chrono::duration<double>(t_first - t0).count();
    res.decode_seconds = std::chrono::duration<double>(t_end - t_first).count();
  }

  if (has_text && !filter.stopped()) {
    std::string tail = filter.put(decoder->flush());
    if (filter.stopped()) {
      res.finish = FinishReason::kStopString;
    } else {
      tail += filter.flush();
    }
    if (res.finish == FinishReason::kCallback) {
      res.text += tail;  // the callback asked for no more calls
    } else if (!tail.empty()) {
      emit(-1, tail);
    }
  }
  if (filter.stopped()) res.stop_string = filter.matched();
  return res;
}

}  // namespace shardlm
