// config.json -> ModelConfig, with the defaults of transformers' config classes.
#include "formats/hf_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/core/status.h"

namespace shardlm {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  fail(StatusCode::kFormat, where + ": " + what);
}

int64_t get_int(const json& j, const char* key, const std::string& where, std::optional<int64_t> def = {}) {
  if (!j.contains(key) || j[key].is_null()) {
    if (def) return *def;
    bad(where, std::string("missing required field '") + key + "'");
  }
  if (!j[key].is_number_integer()) bad(where, std::string("field '") + key + "' must be an integer");
  return j[key].get<int64_t>();
}

double get_num(const json& j, const char* key, const std::string& where, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) bad(where, std::string("field '") + key + "' must be a number");
  return j[key].get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& where, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) bad(where, std::string("field '") + key + "' must be true or false");
  return j[key].get<bool>();
}

std::vector<int64_t> get_ids(const json& v, const std::string& where, const char* key) {
  std::vector<int64_t> ids;
  if (v.is_null()) return ids;
  if (v.is_number_integer()) {
    ids.push_back(v.get<int64_t>());
  } else if (v.is_array()) {
    for (auto& e : v) {
      if (!e.is_number_integer()) bad(where, std::string("field '") + key + "' must hold integers");
      ids.push_back(e.get<int64_t>());
    }
  } else {
    bad(where, std::string("field '") + key + "' must be an integer or a list of integers");
  }
  return ids;
}

// transformers 4 writes "rope_scaling" (and a top-level rope_theta); transformers 5 writes
// "rope_parameters" holding rope_type, rope_theta and the scaling fields together.
RopeScaling parse_rope_scaling(const json& j, const std::string& where) {
  RopeScaling r;
  const char* key = j.contains("rope_parameters") && !j["rope_parameters"].is_null() ? "rope_parameters" : "rope_scaling";
  if (!j.contains(key) || j[key].is_null()) return r;
  const json& s = j[key];
  if (!s.is_object()) bad(where, std::string("field '") + key + "' must be an object or null");
  std::string type;
  if (s.contains("rope_type") && s["rope_type"].is_string()) type = s["rope_type"].get<std::string>();
  else if (s.contains("type") && s["type"].is_string()) type = s["type"].get<std::string>();
  if (type.empty() || type == "default") return r;
  if (type == "llama3") {
    r.type = RopeScalingType::kLlama3;
    r.factor = static_cast<float>(get_num(s, "factor", where + " rope_scaling", 8.0));
    r.low_freq_factor = static_cast<float>(get_num(s, "low_freq_factor", where + " rope_scaling", 1.0));
    r.high_freq_factor = static_cast<float>(get_num(s, "high_freq_factor", where + " rope_scaling", 4.0));
    r.original_max_position_embeddings =
        get_int(s, "original_max_position_embeddings", where + " rope_scaling", 8192);
  } else if (type == "linear") {
    r.type = RopeScalingType::kLinear;
    r.factor = static_cast<float>(get_num(s, "factor", where + " rope_scaling", 1.0));
  } else {
    fail(StatusCode::kUnsupported, where + ": rope_scaling.rope_type '" + type +
                                       "' is not supported (supported: default, llama3, linear)");
  }
  if (!(r.factor > 0)) bad(where, "rope_scaling.factor must be > 0");
  return r;
}

}  // namespace

ModelConfig parse_hf_config(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    bad(where, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) bad(where, "not a JSON object");

  ModelConfig c;
  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    arch = j["architectures"][0].get<std::string>();
  std::string model_type;
  if (j.contains("model_type") && !j["model_type"].is_null()) {
    if (!j["model_type"].is_string()) bad(where, "field 'model_type' must be a string");
    model_type = j["model_type"].get<std::string>();
  }
  if (arch.empty() && model_type.empty()) bad(where, "neither 'architectures' nor 'model_type' is set");
  if (arch == "LlamaForCausalLM" || (arch.empty() && model_type == "llama")) c.family = Family::kLlama;
  else if (arch == "MistralForCausalLM" || (arch.empty() && model_type == "mistral")) c.family = Family::kMistral;
  else if (arch == "Qwen2ForCausalLM" || (arch.empty() && model_type == "qwen2")) c.family = Family::kQwen2;
  else if (arch == "Qwen3ForCausalLM" || (arch.empty() && model_type == "qwen3")) c.family = Family::kQwen3;
  else
    fail(StatusCode::kUnsupported,
         where + ": architecture '" + (arch.empty() ? model_type : arch) +
             "' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");
  c.architecture = arch.empty() ? model_type : arch;

  c.n_vocab = get_int(j, "vocab_size", where);
  c.n_embd = get_int(j, "hidden_size", where);
  c.n_ff = get_int(j, "intermediate_size", where);
  c.n_layer = get_int(j, "num_hidden_layers", where);
  c.n_head = get_int(j, "num_attention_heads", where);
  c.n_head_kv = get_int(j, "num_key_value_heads", where, c.n_head);
  if (c.n_head <= 0) bad(where, "field 'num_attention_heads' must be > 0");
  // Qwen2Config has no head_dim; the others default to hidden_size / num_attention_heads.
  // Defaults of the transformers config classes: Qwen2Config has no head_dim (hidden / heads),
  // Qwen3Config defaults it to 128, Llama/Mistral to hidden / heads.
  if (c.family == Family::kQwen2) c.head_dim = c.n_embd / c.n_head;
  else if (c.family == Family::kQwen3) c.head_dim = get_int(j, "head_dim", where, 128);
  else c.head_dim = get_int(j, "head_dim", where, c.n_embd / c.n_head);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", where, 2048);
  c.rms_norm_eps = static_cast<float>(get_num(j, "rms_norm_eps", where, 1e-6));
  c.rope_theta = get_num(j, "rope_theta", where, 10000.0);
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object())
    c.rope_theta = get_num(j["rope_parameters"], "rope_theta", where + " rope_parameters", c.rope_theta);
  c.rope_scaling = parse_rope_scaling(j, where);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where, false);
  switch (c.family) {
    case Family::kLlama:
      c.attention_bias = get_bool(j, "attention_bias", where, false);
      c.o_proj_bias = c.attention_bias;
      if (get_bool(j, "mlp_bias", where, false))
        fail(StatusCode::kUnsupported, where + ": mlp_bias=true is not supported");
      break;
    case Family::kMistral:
      // MistralConfig defaults sliding_window to 4096 when the key is absent; null means none.
      c.sliding_window = j.contains("sliding_window") ? get_int(j, "sliding_window", where, 0) : 4096;
      break;
    case Family::kQwen2:
      c.attention_bias = true;  // Qwen2 always has q/k/v biases, never an o_proj bias
      if (get_bool(j, "use_sliding_window", where, false))
        fail(StatusCode::kUnsupported, where + ": use_sliding_window=true (Qwen2 per-layer sliding window) is not supported");
      break;
    case Family::kQwen3:
      c.qk_norm = true;
      c.attention_bias = get_bool(j, "attention_bias", where, false);
      c.o_proj_bias = c.attention_bias;
      if (get_bool(j, "use_sliding_window", where, false))
        fail(StatusCode::kUnsupported, where + ": use_sliding_window=true is not supported");
      break;
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    fail(StatusCode::kUnsupported, where + ": hidden_act '" + j["hidden_act"].dump() + "' is not supported (only silu)");
  c.bos_token_id = j.contains("bos_token_id") && j["bos_token_id"].is_number_integer() ? j["bos_token_id"].get<int64_t>() : -1;
  if (j.contains("eos_token_id")) c.eos_token_ids = get_ids(j["eos_token_id"], where, "eos_token_id");
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.source_dtype = j["torch_dtype"].get<std::string>();
  else if (j.contains("dtype") && j["dtype"].is_string()) c.source_dtype = j["dtype"].get<std::string>();
  validate_model_config(c, where);
  return c;
}

ModelConfig load_hf_config(const std::string& dir) {
  const fs::path cfg = fs::path(dir) / "config.json";
  if (!fs::exists(cfg))
    fail(StatusCode::kIo, cfg.string() + ": missing (is '" + dir + "' a Hugging Face checkpoint directory?)");
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) fail(StatusCode::kIo, p.string() + ": cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  ModelConfig c = parse_hf_config(slurp(cfg), cfg.string());
  const fs::path gen = fs::path(dir) / "generation_config.json";
  if (fs::exists(gen)) {
    json g;
    try {
      g = json::parse(slurp(gen));
    } catch (const json::exception& e) {
      fail(StatusCode::kFormat, gen.string() + ": not valid JSON: " + e.what());
    }
    if (g.contains("eos_token_id"))
      for (int64_t id : get_ids(g["eos_token_id"], gen.string(), "eos_token_id"))
        if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end())
          c.eos_token_ids.push_back(id);
    if (c.bos_token_id < 0 && g.contains("bos_token_id") && g["bos_token_id"].is_number_integer())
      c.bos_token_id = g["bos_token_id"].get<int64_t>();
  }
  return c;
}

}  // namespace shardlm
