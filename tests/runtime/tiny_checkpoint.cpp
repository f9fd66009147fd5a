// Tiny random checkpoints: a config.json and one safetensors file.
#include "tests/runtime/tiny_checkpoint.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/runtime/test_util.h"
#include "tests/support/tiny_checkpoint.h"  // the safetensors serializer

namespace shardlm::test {

TinyModelSpec tiny_llama() {
  return {};
}

TinyModelSpec tiny_mistral() {
  TinyModelSpec s;
  s.architecture = "MistralForCausalLM";
  s.model_type = "mistral";
  s.sliding_window = 5;
  s.n_head_kv = 1;
  return s;
}

TinyModelSpec tiny_qwen2() {
  TinyModelSpec s;
  s.architecture = "Qwen2ForCausalLM";
  s.model_type = "qwen2";
  s.attention_bias = true;
  s.tie_word_embeddings = true;
  return s;
}

TinyModelSpec tiny_qwen3() {
  TinyModelSpec s;
  s.architecture = "Qwen3ForCausalLM";
  s.model_type = "qwen3";
  s.head_dim = 24;  // != n_embd / n_head
  s.n_head = 4;
  s.n_head_kv = 2;
  return s;
}

void write_tiny_checkpoint(const TinyModelSpec& s, const std::string& dir) {
  std::filesystem::create_directories(dir);
  nlohmann::json cfg = {{"architectures", {s.architecture}},
                        {"model_type", s.model_type},
                        {"vocab_size", s.n_vocab},
                        {"hidden_size", s.n_embd},
                        {"intermediate_size", s.n_ff},
                        {"num_hidden_layers", s.n_layer},
                        {"num_attention_heads", s.n_head},
                        {"num_key_value_heads", s.n_head_kv},
                        {"head_dim", s.head_dim},
                        {"max_position_embeddings", 256},
                        {"rms_norm_eps", 1e-6},
                        {"rope_theta", 10000.0},
                        {"tie_word_embeddings", s.tie_word_embeddings},
                        {"attention_bias", s.attention_bias},
                        {"bos_token_id", 1},
                        {"eos_token_id", 2},
                        {"hidden_act", "silu"},
                        {"torch_dtype", s.dtype == DType::kBF16 ? "bfloat16" : "float32"}};
  if (s.model_type == "mistral") cfg["sliding_window"] = s.sliding_window;
  if (s.model_type == "qwen2") cfg.erase("head_dim");
  std::ofstream(dir + "/config.json") << cfg.dump(2);

  // name -> shape, in a deterministic order.
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors;
  const int64_t E = s.n_embd, D = s.head_dim;
  const int64_t head_dim = s.model_type == "qwen2" ? E / s.n_head : D;
  tensors.push_back({"model.embed_tokens.weight", {s.n_vocab, E}});
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    tensors.push_back({p + "input_layernorm.weight", {E}});
    tensors.push_back({p + "self_attn.q_proj.weight", {s.n_head * head_dim, E}});
    tensors.push_back({p + "self_attn.k_proj.weight", {s.n_head_kv * head_dim, E}});
    tensors.push_back({p + "self_attn.v_proj.weight", {s.n_head_kv * head_dim, E}});
    if (s.attention_bias) {
      tensors.push_back({p + "self_attn.q_proj.bias", {s.n_head * head_dim}});
      tensors.push_back({p + "self_attn.k_proj.bias", {s.n_head_kv * head_dim}});
      tensors.push_back({p + "self_attn.v_proj.bias", {s.n_head_kv * head_dim}});
    }
    tensors.push_back({p + "self_attn.o_proj.weight", {E, s.n_head * head_dim}});
    if (s.attention_bias && s.model_type != "qwen2") {
      tensors.push_back({p + "self_attn.o_proj.bias", {E}});
    }
    if (s.model_type == "qwen3") {
      tensors.push_back({p + "self_attn.q_norm.weight", {head_dim}});
      tensors.push_back({p + "self_attn.k_norm.weight", {head_dim}});
    }
    tensors.push_back({p + "post_attention_layernorm.weight", {E}});
    tensors.push_back({p + "mlp.gate_proj.weight", {s.n_ff, E}});
    tensors.push_back({p + "mlp.up_proj.weight", {s.n_ff, E}});
    tensors.push_back({p + "mlp.down_proj.weight", {E, s.n_ff}});
  }
  tensors.push_back({"model.norm.weight", {E}});
  if (!s.tie_word_embeddings) tensors.push_back({"lm_head.weight", {s.n_vocab, E}});

  std::vector<testing::RawTensor> raw;
  uint64_t seed = s.seed * 1000;
  for (const auto& [name, shape] : tensors) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const bool is_norm = name.find("norm") != std::string::npos;
    std::vector<float> v = random_floats(static_cast<size_t>(n), ++seed, is_norm ? 0.3f : 0.15f);
    if (is_norm) {
      for (float& x : v) x += 1.0f;
    }
    raw.push_back({name, s.dtype == DType::kBF16 ? "BF16" : "F32", shape, encode(v, s.dtype)});
  }
  testing::write_file(dir + "/model.safetensors", testing::safetensors_bytes(raw));
}

}  // namespace shardlm::test
