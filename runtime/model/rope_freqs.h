// RoPE inverse frequencies for a model config, exactly as Hugging Face computes them:
// default (1 / theta^(2i/head_dim)), "linear" (divided by factor) and "llama3"
// (transformers' _compute_llama3_parameters: long wavelengths divided by factor, short ones
// kept, a smooth blend in between). Pure arithmetic; the rope kernel applies them.
#pragma once

#include <vector>

#include "formats/model_config.h"

namespace shardlm {

// inv_freq [head_dim / 2]
std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace shardlm
