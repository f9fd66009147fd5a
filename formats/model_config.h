// The model description shared by the packer and the runtime: architecture family, dimensions,
// RoPE settings, and the per-rank tensor-parallel layout derived from them.
// Parsed from a Hugging Face config.json by hf_config.cpp; stored in and read back from packs.
// No backend code, no tensor data here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm {

// Values are stored in packs: never renumber.
enum class Family : uint8_t { kLlama = 0, kMistral = 1, kQwen2 = 2, kQwen3 = 3 };
const char* family_name(Family f);

enum class RopeScalingType : uint8_t { kNone = 0, kLlama3 = 1, kLinear = 2 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;              // llama3
  float high_freq_factor = 4.0f;             // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
  Family family = Family::kLlama;
  std::string architecture;    // e.g. "Qwen3ForCausalLM"
  int64_t n_vocab = 0;
  int64_t n_embd = 0;          // hidden_size
  int64_t n_ff = 0;            // intermediate_size
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;   // q/k/v biases (Qwen2 always; Llama attention_bias=true)
  bool o_proj_bias = false;      // o_proj bias (Llama attention_bias=true)
  bool qk_norm = false;          // per-head RMSNorm on q and k before RoPE (Qwen3)
  int64_t sliding_window = 0;    // 0 = full attention
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  std::string source_dtype;      // torch_dtype of the checkpoint, informational
};

// What one rank holds. Derived from (ModelConfig, tp_size, rank) by make_parallel_layout.
struct ParallelLayout {
  int32_t tp_size = 1;
  int32_t tp_rank = 0;
  int64_t n_head_local = 0;
  int64_t n_head_kv_local = 0;
  int64_t head_start = 0;     // global index of this rank's first query head
  int64_t kv_head_start = 0;  // global index of this rank's first kv head
  int64_t n_ff_local = 0;
  int64_t ff_start = 0;
  int64_t vocab_start = 0;    // this rank's vocabulary rows: [vocab_start, vocab_start + n_vocab_local)
  int64_t n_vocab_local = 0;
};

// Checks that `tp_size` can split `config` (heads, kv heads, intermediate size) and returns the
// layout of `rank`. Throws Error(kInvalidArg) saying which dimension does not divide and what to do.
ParallelLayout make_parallel_layout(const ModelConfig& config, int32_t tp_size, int32_t rank);

// Checks internal consistency of a config (positive dims, head_dim * n_head sane, ...).
// `where` names the file in messages. Throws Error(kFormat).
void validate_model_config(const ModelConfig& config, const std::string& where);

}  // namespace shardlm
