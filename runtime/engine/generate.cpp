// generate(): prefill + one-token decode steps, greedy or temperature sampling.
#include "runtime/engine/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "runtime/core/status.h"

namespace shardlm {

int32_t sample_with_temperature(std::span<const float> logits, float temperature, double u) {
  if (logits.empty()) fail(StatusCode::kInvalidArg, "no logits to sample from");
  const float max_l = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max_l) / temperature);
  double target = u * sum, acc = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    acc += std::exp(static_cast<double>(logits[i] - max_l) / temperature);
    if (acc > target) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(logits.size() - 1);
}

GenerateResult generate(Engine& engine, std::span<const int32_t> prompt,
                        const GenerateOptions& options,
                        const std::function<bool(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  if (options.temperature < 0) fail(StatusCode::kInvalidArg, "temperature must be >= 0");
  GenerateResult res;
  std::vector<int32_t> stops = options.stop_ids;
  if (!options.ignore_eos) {
    for (int64_t id : engine.config().eos_token_ids) stops.push_back(static_cast<int32_t>(id));
  }
  const bool greedy = options.temperature == 0.0f;
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const int64_t n_vocab = engine.config().n_vocab;

  // Next token from `ids` appended to the sequence.
  auto step = [&](std::span<const int32_t> ids, bool keep_all) -> int32_t {
    if (greedy && !keep_all) return engine.eval_argmax(ids);
    std::vector<float> logits = engine.eval(ids, keep_all);
    std::span<const float> last(logits.data() + (logits.size() - static_cast<size_t>(n_vocab)),
                                static_cast<size_t>(n_vocab));
    int32_t next;
    if (greedy) {
      next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    } else {
      next = sample_with_temperature(last, options.temperature, uniform(rng));
    }
    if (keep_all) res.prompt_logits = std::move(logits);
    return next;
  };

  auto t0 = Clock::now();
  if (options.max_new_tokens <= 0) {
    if (options.prompt_logits) res.prompt_logits = engine.eval(prompt, true);
    res.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return res;
  }
  int32_t next = step(prompt, options.prompt_logits);
  res.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  auto t1 = Clock::now();
  for (;;) {
    res.tokens.push_back(next);
    if (on_token && !on_token(next)) break;
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) {
      res.stopped = true;
      break;
    }
    if (static_cast<int64_t>(res.tokens.size()) >= options.max_new_tokens) break;
    const int32_t ids[1] = {next};
    next = step(ids, false);
    ++res.n_decode_steps;
  }
  res.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return res;
}

}  // namespace shardlm
