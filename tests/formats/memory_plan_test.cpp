// Memory-plan arithmetic against values computed by hand (see docs/memory-plan.md) for the
// public Mistral-7B-v0.1 and Qwen3-4B configs, plus size parsing and the shortfall messages.
#include <gtest/gtest.h>

#include "formats/hf_config.h"
#include "formats/memory_plan.h"
#include "formats/pack_layout.h"
#include "runtime/core/status.h"

namespace shardlm {
namespace {

const char* kMistral7B = R"({"architectures":["MistralForCausalLM"],"hidden_size":4096,"intermediate_size":14336,
  "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":32000,
  "max_position_embeddings":32768,"sliding_window":4096,"rms_norm_eps":1e-05,"rope_theta":10000.0,
  "tie_word_embeddings":false,"torch_dtype":"bfloat16"})";
const char* kQwen3_4B = R"({"architectures":["Qwen3ForCausalLM"],"head_dim":128,"hidden_size":2560,
  "intermediate_size":9728,"max_position_embeddings":40960,"num_attention_heads":32,"num_hidden_layers":36,
  "num_key_value_heads":8,"rms_norm_eps":1e-06,"rope_theta":1000000,"tie_word_embeddings":true,"vocab_size":151936})";

uint64_t weight_bytes(const ModelConfig& c, const ParallelLayout& p, DType dt) {
  uint64_t total = 0;
  for (auto& s : pack_tensor_specs(c, p, dt)) {
    uint64_t n = dtype_size(s.dtype);
    for (auto d : s.shape) n *= static_cast<uint64_t>(d);
    total += n;
  }
  return total;
}

TEST(MemoryPlan, Mistral7BOnOne80GiBDevice) {
  ModelConfig c = parse_hf_config(kMistral7B, "mistral");
  ParallelLayout p = make_parallel_layout(c, 1, 0);
  // Per layer: (wqkv 6144x4096 + wo 4096x4096 + gate_up 28672x4096 + down 4096x14336) bf16 + 2 f32 norms;
  // plus embedding and lm_head 32000x4096 bf16 and the final norm.
  const uint64_t w = weight_bytes(c, p, DType::kBF16);
  EXPECT_EQ(w, 14483996672ull);
  EXPECT_EQ(kv_bytes_per_token(c, p, DType::kBF16), 131072ull);  // 2 * 32 * 8 * 128 * 2
  // 2048 tokens x (3*4096 + 6144 + 4096 + 3*14336) f32 + logits (32000 + 32000) f32 + 2048 x 4096 f32.
  EXPECT_EQ(workspace_bytes(c, p, 2048, 1), 570681344ull);
  PlanOptions o;
  o.target = "test";
  o.device_total_bytes = 80ull << 30;
  o.mem_fraction = 0.85;
  o.n_ctx = 32768;
  MemoryPlan m = compute_memory_plan(c, p, w, o);
  EXPECT_EQ(m.budget_bytes, 73014444032ull);
  EXPECT_EQ(m.kv_budget_bytes(), 57422895104ull);
  EXPECT_EQ(m.kv_tokens, 438101);
  EXPECT_TRUE(m.fits);
  EXPECT_EQ(m.shortfall_message(), "");
}

TEST(MemoryPlan, Mistral7BAtTp2) {
  ModelConfig c = parse_hf_config(kMistral7B, "mistral");
  ParallelLayout p = make_parallel_layout(c, 2, 1);
  const uint64_t w = weight_bytes(c, p, DType::kBF16);
  EXPECT_EQ(w, 7242530816ull);
  EXPECT_EQ(workspace_bytes(c, p, 2048, 1), 352513536ull);
  PlanOptions o;
  o.device_total_bytes = 80ull << 30;
  o.n_ctx = 32768;
  MemoryPlan m = compute_memory_plan(c, p, w, o);
  EXPECT_EQ(m.kv_bytes_per_token, 65536ull);
  EXPECT_EQ(m.kv_tokens, 990028);
}

TEST(MemoryPlan, Qwen3_4BOn24GiBAtFraction09) {
  ModelConfig c = parse_hf_config(kQwen3_4B, "qwen3");
  ParallelLayout p = make_parallel_layout(c, 1, 0);
  const uint64_t w = weight_bytes(c, p, DType::kBF16);
  EXPECT_EQ(w, 8045328384ull);  // tied: one 151936x2560 embedding, q/k norms per layer
  EXPECT_EQ(kv_bytes_per_token(c, p, DType::kBF16), 147456ull);
  EXPECT_EQ(kv_bytes_per_token(c, p, DType::kF32), 294912ull);
  EXPECT_EQ(workspace_bytes(c, p, 2048, 1), 408062976ull);
  PlanOptions o;
  o.device_total_bytes = 24ull << 30;
  o.mem_fraction = 0.9;
  MemoryPlan m = compute_memory_plan(c, p, w, o);
  EXPECT_EQ(m.n_ctx, 40960);  // defaults to max_position_embeddings
  EXPECT_EQ(m.budget_bytes, 23192823398ull);
  EXPECT_EQ(m.kv_tokens, 96317);
  EXPECT_TRUE(m.fits);
}

TEST(MemoryPlan, KvReplicationAtTp16) {
  ModelConfig c = parse_hf_config(kQwen3_4B, "qwen3");
  EXPECT_EQ(kv_bytes_per_token(c, make_parallel_layout(c, 16, 5), DType::kBF16), 18432ull);  // 1 kv head per rank
}

TEST(MemoryPlan, ShortfallMessages) {
  ModelConfig c = parse_hf_config(kMistral7B, "mistral");
  ParallelLayout p = make_parallel_layout(c, 1, 0);
  const uint64_t w = weight_bytes(c, p, DType::kBF16);
  PlanOptions o;
  o.target = "small";
  o.device_total_bytes = 16ull << 30;
  MemoryPlan m = compute_memory_plan(c, p, w, o);
  EXPECT_FALSE(m.fits);
  EXPECT_EQ(m.kv_tokens, 0);
  EXPECT_NE(m.shortfall_message().find("weights 13.49 GiB"), std::string::npos) << m.shortfall_message();
  EXPECT_NE(m.shortfall_message().find("exceed the budget"), std::string::npos);

  o.device_total_bytes = 20ull << 30;  // weights fit, 32768 tokens of KV (4 GiB) do not
  o.n_ctx = 32768;
  m = compute_memory_plan(c, p, w, o);
  EXPECT_FALSE(m.fits);
  EXPECT_GT(m.kv_tokens, 0);
  EXPECT_NE(m.shortfall_message().find("n_ctx 32768 needs 4.00 GiB of KV"), std::string::npos) << m.shortfall_message();
  EXPECT_NE(m.shortfall_message().find("lower --n-ctx or raise --mem-fraction"), std::string::npos);
}

TEST(MemoryPlan, RejectsBadOptions) {
  ModelConfig c = parse_hf_config(kMistral7B, "mistral");
  ParallelLayout p = make_parallel_layout(c, 1, 0);
  PlanOptions o;
  o.mem_fraction = 1.5;
  EXPECT_THROW(compute_memory_plan(c, p, 0, o), Error);
}

TEST(ParseBytes, UnitsAndErrors) {
  EXPECT_EQ(parse_bytes("80GiB", "x"), 80ull << 30);
  EXPECT_EQ(parse_bytes("80G", "x"), 80ull << 30);
  EXPECT_EQ(parse_bytes("24GB", "x"), 24000000000ull);
  EXPECT_EQ(parse_bytes("1.5TiB", "x"), 3ull << 39);
  EXPECT_EQ(parse_bytes("512MiB", "x"), 512ull << 20);
  EXPECT_EQ(parse_bytes("4096", "x"), 4096ull);
  try {
    parse_bytes("80 parsecs", "--gpu-mem");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--gpu-mem"), std::string::npos);
  }
  EXPECT_THROW(parse_bytes("lots", "x"), Error);
}

}  // namespace
}  // namespace shardlm
