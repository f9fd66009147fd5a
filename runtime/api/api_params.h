// Conversion of the ABI's generation params to the engine's GenerationRequest (defaults from the
// pack, validation with field names) and of a GenerationResult back to the ABI struct.
// Internal to libshardlm.
#pragma once

#include "runtime/api/api_internal.h"
#include "runtime/engine/generation.h"

namespace shardlm::api {

shardlm_generate_params default_generate_params();
// Throws Error(kInvalidArg) naming the field.   p may be NULL (defaults)
GenerationRequest to_request(const shardlm_generate_params* p, const ModelText& text,
                             int64_t n_vocab);
// Fills *out when non-NULL (checks its struct_size first: call before generating).
void check_result_struct(const shardlm_generate_result* out);
void fill_result(const GenerationResult& r, int64_t n_ctx_used, shardlm_generate_result* out);

}  // namespace shardlm::api
