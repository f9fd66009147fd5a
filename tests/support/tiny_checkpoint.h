// Test support: writes small Hugging Face-style checkpoints (config.json + safetensors) with
// random weights, and raw safetensors files (including deliberately malformed ones).
// Not used by the library; tests and tools only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace shardlm::testing {

struct RawTensor {
  std::string name;
  std::string dtype;            // safetensors dtype string: "F32", "BF16", "F16", "I32", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Serializes tensors into safetensors bytes (header + data, in the given order).
std::vector<uint8_t> safetensors_bytes(const std::vector<RawTensor>& tensors);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
void write_text(const std::string& path, const std::string& text);
std::vector<uint8_t> read_file(const std::string& path);

struct TinySpec {
  std::string architecture = "LlamaForCausalLM";
  std::string model_type = "llama";
  int64_t n_vocab = 96, n_embd = 32, n_ff = 64, n_layer = 2, n_head = 4, n_head_kv = 2, head_dim = 8;
  bool tied = false;
  bool attention_bias = false;  // Llama attention_bias (q/k/v/o biases); Qwen2 always has q/k/v biases
  std::string dtype = "F32";    // weights dtype in the checkpoint: F32, BF16 or F16
  uint32_t seed = 1;
  int shards = 1;               // > 1 writes model-0000i-of-0000N.safetensors + index
};

struct TinyCheckpoint {
  std::string dir;
  nlohmann::json config;
  // Every tensor's values as f32 (after rounding to the checkpoint dtype), by HF name.
  std::map<std::string, std::vector<float>> values;
  std::map<std::string, std::vector<int64_t>> shapes;
};

// Writes config.json, generation_config.json, tokenizer_config.json and the safetensors file(s).
TinyCheckpoint write_tiny_checkpoint(const std::string& dir, const TinySpec& spec);

// A fresh empty temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace shardlm::testing
