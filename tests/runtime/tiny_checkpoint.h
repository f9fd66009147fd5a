// Writes small random Hugging Face-style checkpoints (config.json + model.safetensors) for the
// four families, so runtime tests can pack and run models without Python or the committed HF
// fixtures (those check parity with transformers; these check TP consistency, KV decode and
// pack-set errors). Not a general safetensors writer.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/core/dtype.h"

namespace shardlm::test {

struct TinyModelSpec {
  std::string architecture = "LlamaForCausalLM";  // or Mistral/Qwen2/Qwen3ForCausalLM
  std::string model_type = "llama";
  int64_t n_vocab = 97;
  int64_t n_embd = 64;
  int64_t n_ff = 96;
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t head_dim = 16;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  int64_t sliding_window = 0;  // Mistral only
  DType dtype = DType::kF32;
  uint64_t seed = 1;
};

TinyModelSpec tiny_llama();
TinyModelSpec tiny_mistral();
TinyModelSpec tiny_qwen2();
TinyModelSpec tiny_qwen3();

// Writes config.json and model.safetensors into `dir` (created).
void write_tiny_checkpoint(const TinyModelSpec& spec, const std::string& dir);

}  // namespace shardlm::test
