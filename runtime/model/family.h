// What distinguishes the supported model families inside the shared decoder forward, and the
// check that a config matches its family. Llama (incl. llama3 RoPE scaling, optional attention
// bias), Mistral (sliding window), Qwen2 (QKV bias), Qwen3 (q/k RMSNorm before RoPE).
// Not the forward itself (transformer.cpp) and not config parsing (formats/hf_config).
#pragma once

#include <string>

#include "formats/model_config.h"

namespace shardlm {

struct FamilySpec {
  const char* name;
  bool qkv_bias;           // blk.N.bqkv present
  bool o_bias;             // blk.N.bo present (rank 0)
  bool qk_norm;            // blk.N.q_norm / k_norm applied per head before RoPE
  int64_t sliding_window;  // 0 = full causal attention
};

// The forward's switches for `config`. Throws Error(kUnsupported) when the config asks for
// something its family's forward does not do (e.g. qk_norm on Llama), naming `where`.
FamilySpec family_spec(const ModelConfig& config, const std::string& where);

}  // namespace shardlm
