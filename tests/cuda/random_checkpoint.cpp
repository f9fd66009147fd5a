// write_random_checkpoint: config.json, generation_config.json, streamed safetensors.
#include "tests/cuda/random_checkpoint.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/status.h"

namespace shardlm::bench {

namespace {

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  bool norm;  // ~1 instead of ~0
};

nlohmann::json config_for(const std::string& shape) {
  if (shape == "qwen3-0.6b") {
    return {{"architectures", {"Qwen3ForCausalLM"}},
            {"model_type", "qwen3"},
            {"attention_bias", false},
            {"bos_token_id", 151643},
            {"eos_token_id", 151645},
            {"head_dim", 128},
            {"hidden_act", "silu"},
            {"hidden_size", 1024},
            {"intermediate_size", 3072},
            {"max_position_embeddings", 40960},
            {"num_attention_heads", 16},
            {"num_hidden_layers", 28},
            {"num_key_value_heads", 8},
            {"rms_norm_eps", 1e-6},
            {"rope_scaling", nullptr},
            {"rope_theta", 1000000},
            {"sliding_window", nullptr},
            {"use_sliding_window", false},
            {"tie_word_embeddings", true},
            {"torch_dtype", "bfloat16"},
            {"vocab_size", 151936}};
  }
  if (shape == "llama3-8b") {
    return {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"attention_bias", false},
            {"bos_token_id", 128000},
            {"eos_token_id", 128001},
            {"hidden_act", "silu"},
            {"hidden_size", 4096},
            {"intermediate_size", 14336},
            {"max_position_embeddings", 8192},
            {"num_attention_heads", 32},
            {"num_hidden_layers", 32},
            {"num_key_value_heads", 8},
            {"rms_norm_eps", 1e-5},
            {"rope_scaling", nullptr},
            {"rope_theta", 500000.0},
            {"tie_word_embeddings", false},
            {"torch_dtype", "bfloat16"},
            {"vocab_size", 128256}};
  }
  fail(StatusCode::kInvalidArg, "unknown checkpoint shape '" + shape + "' (qwen3-0.6b, llama3-8b)");
}

std::vector<Spec> tensors_of(const nlohmann::json& c) {
  const int64_t h = c["hidden_size"], nh = c["num_attention_heads"], nkv = c["num_key_value_heads"],
                ff = c["intermediate_size"], vocab = c["vocab_size"],
                layers = c["num_hidden_layers"];
  const int64_t hd = c.contains("head_dim") ? c["head_dim"].get<int64_t>() : h / nh;
  const bool qwen3 = c["model_type"] == "qwen3";
  std::vector<Spec> s = {{"model.embed_tokens.weight", {vocab, h}, false}};
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    s.push_back({p + "input_layernorm.weight", {h}, true});
    s.push_back({p + "self_attn.q_proj.weight", {nh * hd, h}, false});
    s.push_back({p + "self_attn.k_proj.weight", {nkv * hd, h}, false});
    s.push_back({p + "self_attn.v_proj.weight", {nkv * hd, h}, false});
    if (qwen3) {
      s.push_back({p + "self_attn.q_norm.weight", {hd}, true});
      s.push_back({p + "self_attn.k_norm.weight", {hd}, true});
    }
    s.push_back({p + "self_attn.o_proj.weight", {h, nh * hd}, false});
    s.push_back({p + "post_attention_layernorm.weight", {h}, true});
    s.push_back({p + "mlp.gate_proj.weight", {ff, h}, false});
    s.push_back({p + "mlp.up_proj.weight", {ff, h}, false});
    s.push_back({p + "mlp.down_proj.weight", {h, ff}, false});
  }
  s.push_back({"model.norm.weight", {h}, true});
  if (!c["tie_word_embeddings"].get<bool>()) s.push_back({"lm_head.weight", {vocab, h}, false});
  return s;
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  if (!f) fail(StatusCode::kIo, "cannot write " + p.string());
}

}  // namespace

void write_random_checkpoint(const std::string& shape, const std::string& dir, int n_layers) {
  nlohmann::json cfg = config_for(shape);
  if (n_layers > 0) cfg["num_hidden_layers"] = n_layers;
  std::filesystem::create_directories(dir);
  const std::filesystem::path d(dir);
  write_text(d / "config.json", cfg.dump(2));
  write_text(d / "generation_config.json", nlohmann::json{{"bos_token_id", cfg["bos_token_id"]},
                                                          {"eos_token_id", cfg["eos_token_id"]}}
                                               .dump(2));

  const std::vector<Spec> specs = tensors_of(cfg);
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const Spec& s : specs) {
    uint64_t n = 2;
    for (int64_t v : s.shape) n *= static_cast<uint64_t>(v);
    header[s.name] = {
        {"dtype", "BF16"}, {"shape", s.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  while (text.size() % 8) text += ' ';
  const std::filesystem::path tmp = d / "model.safetensors.tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(StatusCode::kIo, "cannot create " + tmp.string());
  const uint64_t len = text.size();
  bool ok = std::fwrite(&len, 8, 1, f) == 1 && std::fwrite(text.data(), 1, len, f) == len;
  std::vector<uint16_t> buf(1 << 20);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (const Spec& s : specs) {
    uint64_t n = 1;
    for (int64_t v : s.shape) n *= static_cast<uint64_t>(v);
    for (uint64_t done = 0; done < n && ok;) {
      const size_t m = static_cast<size_t>(std::min<uint64_t>(buf.size(), n - done));
      for (size_t i = 0; i < m; ++i) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // bf16 bits: weights ~ +-[2^-7, 2^-5) (~0.02), norms ~ 1 + small.
        const uint16_t mant = static_cast<uint16_t>(state & 0x7f);
        const uint16_t sign = static_cast<uint16_t>((state >> 8) & 1) << 15;
        const uint16_t exp = static_cast<uint16_t>(120 + ((state >> 9) & 1));
        buf[i] = s.norm ? static_cast<uint16_t>(0x3f80 | (mant >> 3))
                        : static_cast<uint16_t>(sign | (exp << 7) | mant);
      }
      ok = std::fwrite(buf.data(), 2, m, f) == m;
      done += m;
    }
  }
  ok = std::fclose(f) == 0 && ok;
  if (!ok) fail(StatusCode::kIo, "cannot write " + tmp.string() + " (disk full?)");
  std::filesystem::rename(tmp, d / "model.safetensors");
}

}  // namespace shardlm::bench
