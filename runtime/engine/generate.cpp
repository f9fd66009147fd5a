// generate(): one request through a step engine of its own (no prefix cache), greedy or sampled.
#include "runtime/engine/generate.h"

#include <algorithm>

#include "runtime/core/status.h"
#include "runtime/engine/step_engine.h"

namespace shardlm {

GenerateResult generate(Engine& engine, std::span<const int32_t> prompt,
                        const GenerateOptions& options,
                        const std::function<bool(int32_t)>& on_token) {
  if (options.temperature < 0) fail(StatusCode::kInvalidArg, "temperature must be >= 0");
  StepEngineOptions so;
  so.max_seqs = 1;
  so.prefix_cache = false;  // prompt logits need every position computed
  so.speculation = options.speculation;
  StepEngine se(engine, so, options.draft);
  return generate_on(se, prompt, options, on_token);
}

GenerateResult generate_on(StepEngine& se, std::span<const int32_t> prompt,
                           const GenerateOptions& options,
                           const std::function<bool(int32_t)>& on_token) {
  if (options.temperature < 0) fail(StatusCode::kInvalidArg, "temperature must be >= 0");
  if (se.has_work()) fail(StatusCode::kInvalidArg, "generate_on: the step engine is busy");
  const Engine& engine = se.engine();
  const StepEngineStats before = se.stats();
  TokenRequest r;
  r.prompt.assign(prompt.begin(), prompt.end());
  r.sampling.temperature = options.temperature;
  r.sampling.seed = options.seed;
  // A prompt with nothing to generate still runs (for its logits): one token, dropped below.
  const bool prompt_only = options.max_new_tokens <= 0;
  r.max_new_tokens = prompt_only ? 1 : options.max_new_tokens;
  r.stop_ids = options.stop_ids;
  if (!options.ignore_eos) {
    for (int64_t id : engine.config().eos_token_ids) r.stop_ids.push_back(static_cast<int32_t>(id));
  }
  r.prompt_logits = options.prompt_logits;
  if (on_token && !prompt_only) r.on_token = on_token;
  const RequestId id = se.submit(std::move(r));
  se.run_to_completion();
  TokenResult t = se.take_result(id);
  const StepEngineStats st = se.stats();

  GenerateResult res;
  res.prompt_logits = std::move(t.prompt_logits);
  res.prefill_seconds = t.ttft_seconds;
  res.n_steps = st.n_steps - before.n_steps;
  res.spec_verifications = st.spec_verifications - before.spec_verifications;
  res.spec_proposed = st.spec_proposed - before.spec_proposed;
  res.spec_accepted = st.spec_accepted - before.spec_accepted;
  res.draft_steps = st.draft_steps - before.draft_steps;
  if (prompt_only) return res;
  res.tokens = std::move(t.tokens);
  if (t.finish == FinishReason::kStopToken) {
    res.tokens.push_back(t.stop_token);  // the old contract: the stop id is included
    res.stopped = true;
    if (on_token) on_token(t.stop_token);
  }
  res.decode_seconds = std::max(0.0, t.seconds - t.ttft_seconds);
  res.n_decode_steps = std::max<int64_t>(0, static_cast<int64_t>(res.tokens.size()) - 1);
  return res;
}

}  // namespace shardlm
