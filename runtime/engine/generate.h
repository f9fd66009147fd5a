// The generation loop over an Engine: prefill the prompt, then decode one token at a time
// (each step feeds only the new token; the KV cache holds the rest). Greedy when temperature
// is 0 (distributed argmax, no logits gathered), else temperature sampling with a seeded RNG.
// Stops at max_new_tokens or a stop id (the model's eos ids unless ignore_eos). The ids-in/ids-out
// path of shardlm-run and the engine tests, on the engine's default sequence. Not a scheduler;
// the full sampler chain, stop strings, text streaming and KV reuse across turns are in
// sampler.h and session.h.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runtime/engine/engine.h"

namespace shardlm {

struct GenerateOptions {
  int64_t max_new_tokens = 16;
  bool ignore_eos = false;
  std::vector<int32_t> stop_ids;  // added to the model's eos ids
  float temperature = 0.0f;
  uint64_t seed = 0;
  bool prompt_logits = false;  // keep the logits of every prompt position
};

struct GenerateResult {
  std::vector<int32_t> tokens;       // generated ids (the stop id included when one was hit)
  std::vector<float> prompt_logits;  // [n_prompt, n_vocab] when asked
  bool stopped = false;              // ended on a stop id
  double prefill_seconds = 0;        // prompt forward + first token
  double decode_seconds = 0;         // every later token
  int64_t n_decode_steps = 0;        // forwards of one token
};

// `on_token(id)` is called for every generated id; returning false stops generation.
GenerateResult generate(Engine& engine, std::span<const int32_t> prompt,
                        const GenerateOptions& options,
                        const std::function<bool(int32_t)>& on_token = {});

// Samples from softmax(logits / temperature) with `u` uniform in [0, 1).   logits [n_vocab]
int32_t sample_with_temperature(std::span<const float> logits, float temperature, double u);

}  // namespace shardlm
