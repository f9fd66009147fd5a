// Tiny checkpoint writer for tests.
#include "tiny_checkpoint.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "runtime/core/dtype.h"

namespace shardlm::testing {
namespace fs = std::filesystem;
using nlohmann::json;

std::vector<uint8_t> safetensors_bytes(const std::vector<RawTensor>& tensors) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t off = 0;
  for (auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h += ' ';
  const uint64_t n = h.size();
  std::vector<uint8_t> out(8 + n + off);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, h.data(), n);
  size_t pos = 8 + n;
  for (auto& t : tensors) {
    if (!t.bytes.empty()) std::memcpy(out.data() + pos, t.bytes.data(), t.bytes.size());
    pos += t.bytes.size();
  }
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

void write_text(const std::string& path, const std::string& text) {
  write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

TinyCheckpoint write_tiny_checkpoint(const std::string& dir, const TinySpec& s) {
  fs::create_directories(dir);
  TinyCheckpoint ck;
  ck.dir = dir;
  json cfg = {{"architectures", {s.architecture}},
              {"model_type", s.model_type},
              {"vocab_size", s.n_vocab},
              {"hidden_size", s.n_embd},
              {"intermediate_size", s.n_ff},
              {"num_hidden_layers", s.n_layer},
              {"num_attention_heads", s.n_head},
              {"num_key_value_heads", s.n_head_kv},
              {"max_position_embeddings", 256},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", s.tied},
              {"hidden_act", "silu"},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"torch_dtype", s.dtype == "F32" ? "float32" : s.dtype == "BF16" ? "bfloat16" : "float16"}};
  if (s.model_type != "qwen2") cfg["head_dim"] = s.head_dim;
  if (s.model_type == "llama") cfg["attention_bias"] = s.attention_bias;
  ck.config = cfg;
  write_text(dir + "/config.json", cfg.dump(2));
  write_text(dir + "/generation_config.json", json{{"bos_token_id", 1}, {"eos_token_id", {2, 3}}, {"temperature", 0.7}}.dump(2));
  write_text(dir + "/tokenizer_config.json", json{{"chat_template", "{{ messages[0]['content'] }}"}}.dump());

  const int64_t E = s.n_embd, D = s.model_type == "qwen2" ? s.n_embd / s.n_head : s.head_dim;
  const int64_t Q = s.n_head * D, KV = s.n_head_kv * D;
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
  shapes.push_back({"model.embed_tokens.weight", {s.n_vocab, E}});
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    shapes.push_back({p + "input_layernorm.weight", {E}});
    shapes.push_back({p + "self_attn.q_proj.weight", {Q, E}});
    shapes.push_back({p + "self_attn.k_proj.weight", {KV, E}});
    shapes.push_back({p + "self_attn.v_proj.weight", {KV, E}});
    const bool qkv_bias = s.model_type == "qwen2" || s.attention_bias;
    if (qkv_bias) {
      shapes.push_back({p + "self_attn.q_proj.bias", {Q}});
      shapes.push_back({p + "self_attn.k_proj.bias", {KV}});
      shapes.push_back({p + "self_attn.v_proj.bias", {KV}});
    }
    if (s.model_type == "qwen3") {
      shapes.push_back({p + "self_attn.q_norm.weight", {D}});
      shapes.push_back({p + "self_attn.k_norm.weight", {D}});
    }
    shapes.push_back({p + "self_attn.o_proj.weight", {E, Q}});
    if (s.model_type == "llama" && s.attention_bias) shapes.push_back({p + "self_attn.o_proj.bias", {E}});
    shapes.push_back({p + "post_attention_layernorm.weight", {E}});
    shapes.push_back({p + "mlp.gate_proj.weight", {s.n_ff, E}});
    shapes.push_back({p + "mlp.up_proj.weight", {s.n_ff, E}});
    shapes.push_back({p + "mlp.down_proj.weight", {E, s.n_ff}});
  }
  shapes.push_back({"model.norm.weight", {E}});
  if (!s.tied) shapes.push_back({"lm_head.weight", {s.n_vocab, E}});

  std::mt19937 rng(s.seed);
  std::normal_distribution<float> normal(0.f, 0.5f);
  const DType dt = *parse_dtype(s.dtype);
  std::vector<RawTensor> raw;
  for (auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = normal(rng);
    RawTensor t{name, s.dtype, shape, std::vector<uint8_t>(static_cast<size_t>(n) * dtype_size(dt))};
    convert_dtype(v.data(), DType::kF32, t.bytes.data(), dt, v.size());
    convert_dtype(t.bytes.data(), dt, v.data(), DType::kF32, v.size());  // values as stored
    ck.values[name] = std::move(v);
    ck.shapes[name] = shape;
    raw.push_back(std::move(t));
  }
  if (s.shards <= 1) {
    write_file(dir + "/model.safetensors", safetensors_bytes(raw));
  } else {
    json weight_map = json::object();
    const size_t per = (raw.size() + s.shards - 1) / static_cast<size_t>(s.shards);
    for (int i = 0; i < s.shards; ++i) {
      char fname[64];
      std::snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", i + 1, s.shards);
      std::vector<RawTensor> part;
      for (size_t k = static_cast<size_t>(i) * per; k < std::min(raw.size(), (static_cast<size_t>(i) + 1) * per); ++k) {
        part.push_back(raw[k]);
        weight_map[raw[k].name] = fname;
      }
      write_file(dir + "/" + fname, safetensors_bytes(part));
    }
    write_text(dir + "/model.safetensors.index.json", json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump(2));
  }
  return ck;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "shardlm-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace shardlm::testing
