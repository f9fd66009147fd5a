// Writes a Hugging Face-style checkpoint (config.json + one model.safetensors, bf16) with random
// weights and the real shapes of Qwen3-0.6B or Llama-3-8B, streaming tensor by tensor, for the
// GPU benchmarks on machines without Python/numpy (tools/make_random_checkpoint.py is the
// full-featured twin). Not a model that says anything; not used by any test.
#pragma once

#include <string>

namespace shardlm::bench {

// `shape`: "qwen3-0.6b" or "llama3-8b" (optionally with fewer layers). Throws Error(kInvalidArg)
// for an unknown shape and Error(kIo) when a file cannot be written.
void write_random_checkpoint(const std::string& shape, const std::string& dir, int n_layers = 0);

}  // namespace shardlm::bench
