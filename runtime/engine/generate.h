// One request, ids in and ids out, run by a step engine of its own over the Engine's paged KV
// pool (EngineOptions::kv_blocks; the default sizes one from the memory plan): prefill in
// chunks, then one token per step. Greedy when temperature is 0 (distributed argmax, no logits
// gathered), else temperature sampling with a seeded sampler. Stops at max_new_tokens or a stop
// id (the model's eos ids unless ignore_eos). The path of shardlm-run and the engine tests. Not
// for serving many requests (step_engine.h, serving_loop.h); text, stop strings and chat are in
// session.h. The engine must have no other step engine attached while it runs.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runtime/engine/engine.h"
#include "runtime/engine/speculation.h"

namespace shardlm {

struct GenerateOptions {
  int64_t max_new_tokens = 16;
  bool ignore_eos = false;
  std::vector<int32_t> stop_ids;  // added to the model's eos ids
  float temperature = 0.0f;
  uint64_t seed = 0;
  bool prompt_logits = false;  // keep the logits of every prompt position
  // Speculative decoding (speculation.h); kDraft needs `draft` (a paged KV pool, no step engine
  // attached, the target's tokenizer).
  SpeculationOptions speculation;
  Engine* draft = nullptr;
};

struct GenerateResult {
  std::vector<int32_t> tokens;       // generated ids (the stop id included when one was hit)
  std::vector<float> prompt_logits;  // [n_prompt, n_vocab] when asked
  bool stopped = false;              // ended on a stop id
  double prefill_seconds = 0;        // submit to the first token (prompt forward)
  double decode_seconds = 0;         // every later token
  int64_t n_decode_steps = 0;        // tokens after the first (one forward each, unspeculated)
  int64_t n_steps = 0;               // target forward steps actually run (prefill included)
  // Speculation: verifications, tokens proposed and accepted, draft forward steps.
  int64_t spec_verifications = 0, spec_proposed = 0, spec_accepted = 0, draft_steps = 0;
};

// `on_token(id)` is called for every generated id; returning false stops generation.
GenerateResult generate(Engine& engine, std::span<const int32_t> prompt,
                        const GenerateOptions& options,
                        const std::function<bool(int32_t)>& on_token = {});

class StepEngine;
// The same request on a step engine the caller keeps (it must be idle; its speculation settings
// and draft apply, options.speculation and options.draft are ignored): requests run one after
// another on it share what it learned about its proposer (speculation.h's SpecPrior), as a
// server's or a chat's do. Counts in the result are this request's.
GenerateResult generate_on(StepEngine& se, std::span<const int32_t> prompt,
                           const GenerateOptions& options,
                           const std::function<bool(int32_t)>& on_token = {});

}  // namespace shardlm
