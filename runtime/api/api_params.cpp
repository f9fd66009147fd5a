// GenerationRequest <- shardlm_generate_params; shardlm_generate_result <- GenerationResult.
#include "runtime/api/api_params.h"

#include <random>

namespace shardlm::api {

shardlm_generate_params default_generate_params() {
  shardlm_generate_params p;
  std::memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.max_tokens = 256;
  p.temperature = SHARDLM_DEFAULT;
  p.top_k = SHARDLM_DEFAULT;
  p.top_p = SHARDLM_DEFAULT;
  p.min_p = SHARDLM_DEFAULT;
  p.repetition_penalty = SHARDLM_DEFAULT;
  p.presence_penalty = 0;
  p.frequency_penalty = 0;
  p.penalty_last_n = -1;
  p.seed = SHARDLM_SEED_RANDOM;
  return p;
}

GenerationRequest to_request(const shardlm_generate_params* given, const ModelText& text,
                             int64_t n_vocab) {
  const shardlm_generate_params p = given ? *given : default_generate_params();
  check_struct_size(p.struct_size, sizeof(shardlm_generate_params), "shardlm_generate_params");
  const SamplerParams& d = text.defaults();
  GenerationRequest r;
  SamplerParams& s = r.sampling;
  s.temperature = p.temperature < 0 ? d.temperature : p.temperature;
  s.top_k = p.top_k < 0 ? d.top_k : p.top_k;
  s.top_p = p.top_p < 0 ? d.top_p : p.top_p;
  s.min_p = p.min_p < 0 ? d.min_p : p.min_p;
  s.repetition_penalty = p.repetition_penalty < 0 ? d.repetition_penalty : p.repetition_penalty;
  s.presence_penalty = p.presence_penalty;
  s.frequency_penalty = p.frequency_penalty;
  s.penalty_last_n = p.penalty_last_n;
  s.seed = p.seed == SHARDLM_SEED_RANDOM
               ? (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()
               : p.seed;
  validate_sampler_params(s);
  r.max_new_tokens = p.max_tokens;
  r.ignore_eos = p.ignore_eos != 0;
  if (p.n_stop_ids > 0) require(p.stop_ids, "shardlm_generate_params.stop_ids");
  for (size_t i = 0; i < p.n_stop_ids; ++i) {
    if (p.stop_ids[i] < 0 || p.stop_ids[i] >= n_vocab) {
      fail(StatusCode::kInvalidArg, "shardlm_generate_params.stop_ids[" + std::to_string(i) +
                                        "] = " + std::to_string(p.stop_ids[i]) +
                                        " is outside the vocabulary of " + std::to_string(n_vocab));
    }
    r.stop_ids.push_back(p.stop_ids[i]);
  }
  if (p.n_stop_strings > 0) require(p.stop_strings, "shardlm_generate_params.stop_strings");
  for (size_t i = 0; i < p.n_stop_strings; ++i) {
    if (p.stop_strings[i] == nullptr) {
      fail(StatusCode::kInvalidArg,
           "shardlm_generate_params.stop_strings[" + std::to_string(i) + "] is NULL");
    }
    r.stop_strings.emplace_back(p.stop_strings[i]);
  }
  return r;
}

void check_result_struct(const shardlm_generate_result* out) {
  if (out)
    check_struct_size(out->struct_size, sizeof(shardlm_generate_result), "shardlm_generate_result");
}

void fill_result(const GenerationResult& r, int64_t n_ctx_used, shardlm_generate_result* out) {
  if (!out) return;
  shardlm_generate_result o;
  std::memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.finish_reason = static_cast<int32_t>(r.finish);
  o.n_generated = static_cast<int32_t>(r.tokens.size());
  o.n_prompt = r.n_prompt;
  o.n_reused = r.n_reused;
  o.n_prefilled = r.n_prefilled;
  o.n_decode_steps = r.n_decode_steps;
  o.n_ctx_used = n_ctx_used;
  o.prefill_seconds = r.prefill_seconds;
  o.ttft_seconds = r.ttft_seconds;
  o.decode_seconds = r.decode_seconds;
  *out = o;
}

}  // namespace shardlm::api
