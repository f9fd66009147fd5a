// config.json parsing (families, defaults, rope scaling, errors) and the per-rank TP split.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "formats/hf_config.h"
#include "formats/model_config.h"
#include "runtime/core/status.h"

namespace shardlm {
namespace {

std::string error_of(const std::function<void()>& f, StatusCode* code = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

const char* kQwen3_4B = R"({
  "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": false,
  "head_dim": 128, "hidden_act": "silu", "hidden_size": 2560, "intermediate_size": 9728,
  "max_position_embeddings": 40960, "num_attention_heads": 32, "num_hidden_layers": 36,
  "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
  "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false,
  "vocab_size": 151936, "bos_token_id": 151643, "eos_token_id": 151645})";

TEST(HfConfig, Qwen3) {
  ModelConfig c = parse_hf_config(kQwen3_4B, "config.json");
  EXPECT_EQ(c.family, Family::kQwen3);
  EXPECT_EQ(c.n_embd, 2560);
  EXPECT_EQ(c.n_head_kv, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151645});
}

TEST(HfConfig, Qwen2HasQkvBiasAndDerivedHeadDim) {
  ModelConfig c = parse_hf_config(R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":896,"intermediate_size":4864,
    "num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,
    "sliding_window":32768,"use_sliding_window":false,"tie_word_embeddings":true})", "c");
  EXPECT_EQ(c.family, Family::kQwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.o_proj_bias);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.sliding_window, 0);  // use_sliding_window=false
}

TEST(HfConfig, MistralSlidingWindowAndLlamaDefaults) {
  ModelConfig m = parse_hf_config(R"({"architectures":["MistralForCausalLM"],"hidden_size":4096,"intermediate_size":14336,
    "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":32000,"sliding_window":4096})", "c");
  EXPECT_EQ(m.family, Family::kMistral);
  EXPECT_EQ(m.sliding_window, 4096);
  EXPECT_FALSE(m.tie_word_embeddings);
  // Class defaults when keys are absent: MistralConfig sliding_window 4096, Qwen3Config head_dim 128.
  ModelConfig m2 = parse_hf_config(R"({"architectures":["MistralForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100})", "c");
  EXPECT_EQ(m2.sliding_window, 4096);
  ModelConfig m3 = parse_hf_config(R"({"architectures":["MistralForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"sliding_window":null})", "c");
  EXPECT_EQ(m3.sliding_window, 0);
  ModelConfig q3 = parse_hf_config(R"({"architectures":["Qwen3ForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100})", "c");
  EXPECT_EQ(q3.head_dim, 128);
  ModelConfig l = parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100})", "c");
  EXPECT_EQ(l.n_head_kv, 4);   // defaults to num_attention_heads
  EXPECT_EQ(l.head_dim, 16);
  EXPECT_DOUBLE_EQ(l.rope_theta, 10000.0);
}

TEST(HfConfig, Llama3RopeScaling) {
  ModelConfig c = parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"attention_bias":true,
    "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
    "original_max_position_embeddings":8192},"eos_token_id":[128001,128009]})", "c");
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.o_proj_bias);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128009}));
}

TEST(HfConfig, Transformers5RopeParameters) {
  ModelConfig c = parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"dtype":"bfloat16",
    "rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":32.0,"low_freq_factor":1.0,
    "high_freq_factor":4.0,"original_max_position_embeddings":8192}})", "c");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 32.0f);
  EXPECT_EQ(c.source_dtype, "bfloat16");
  ModelConfig d = parse_hf_config(R"({"architectures":["Qwen3ForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"rope_parameters":{"rope_type":"default","rope_theta":1000000.0}})", "c");
  EXPECT_DOUBLE_EQ(d.rope_theta, 1e6);
  EXPECT_EQ(d.rope_scaling.type, RopeScalingType::kNone);
}

TEST(HfConfig, Errors) {
  StatusCode code{};
  auto msg = error_of([] { parse_hf_config(R"({"architectures":["GPT2LMHeadModel"]})", "ckpt/config.json"); }, &code);
  EXPECT_EQ(code, StatusCode::kUnsupported);
  EXPECT_NE(msg.find("ckpt/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("GPT2LMHeadModel"), std::string::npos) << msg;

  msg = error_of([] { parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"vocab_size":10})", "x/config.json"); }, &code);
  EXPECT_EQ(code, StatusCode::kFormat);
  EXPECT_NE(msg.find("'intermediate_size'"), std::string::npos) << msg;

  msg = error_of([] { parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":"big"})", "x"); }, &code);
  EXPECT_NE(msg.find("'hidden_size' must be an integer"), std::string::npos) << msg;

  msg = error_of([] { parse_hf_config("{not json", "x/config.json"); }, &code);
  EXPECT_EQ(code, StatusCode::kFormat);
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;

  msg = error_of([] { parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"rope_scaling":{"rope_type":"yarn","factor":4}})", "x"); }, &code);
  EXPECT_EQ(code, StatusCode::kUnsupported);
  EXPECT_NE(msg.find("yarn"), std::string::npos) << msg;
}

TEST(HfConfig, MissingConfigJson) {
  StatusCode code{};
  auto msg = error_of([] { load_hf_config("/nonexistent-shardlm-dir"); }, &code);
  EXPECT_EQ(code, StatusCode::kIo);
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
}

TEST(ParallelLayout, SplitsHeadsFfAndVocab) {
  ModelConfig c = parse_hf_config(kQwen3_4B, "c");
  ParallelLayout p = make_parallel_layout(c, 4, 3);
  EXPECT_EQ(p.n_head_local, 8);
  EXPECT_EQ(p.head_start, 24);
  EXPECT_EQ(p.n_head_kv_local, 2);
  EXPECT_EQ(p.kv_head_start, 6);
  EXPECT_EQ(p.n_ff_local, 2432);
  EXPECT_EQ(p.ff_start, 7296);
  EXPECT_EQ(p.vocab_start, 3 * 37984);
  EXPECT_EQ(p.n_vocab_local, 37984);
}

TEST(ParallelLayout, ReplicatesKvHeadsWhenTpExceedsThem) {
  ModelConfig c = parse_hf_config(kQwen3_4B, "c");  // 32 heads, 8 kv heads: group of 4
  for (int r = 0; r < 16; ++r) {
    ParallelLayout p = make_parallel_layout(c, 16, r);
    EXPECT_EQ(p.n_head_local, 2);
    EXPECT_EQ(p.n_head_kv_local, 1);
    EXPECT_EQ(p.kv_head_start, r / 2) << "rank " << r;  // heads 2r, 2r+1 use kv head (2r)/4
  }
}

TEST(ParallelLayout, UnevenVocabSplit) {
  ModelConfig c = parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":250})", "c");
  int64_t total = 0;
  for (int r = 0; r < 4; ++r) {
    ParallelLayout p = make_parallel_layout(c, 4, r);
    EXPECT_EQ(p.vocab_start, total);
    total += p.n_vocab_local;
  }
  EXPECT_EQ(total, 250);
  EXPECT_EQ(make_parallel_layout(c, 4, 3).n_vocab_local, 61);
}

TEST(ParallelLayout, RejectsTpNotDividing) {
  ModelConfig c = parse_hf_config(kQwen3_4B, "c");
  StatusCode code{};
  auto msg = error_of([&] { make_parallel_layout(c, 3, 0); }, &code);
  EXPECT_EQ(code, StatusCode::kInvalidArg);
  EXPECT_NE(msg.find("num_attention_heads 32"), std::string::npos) << msg;
  c.n_ff = 9730;
  msg = error_of([&] { make_parallel_layout(c, 4, 0); }, &code);
  EXPECT_NE(msg.find("intermediate_size 9730"), std::string::npos) << msg;
  ModelConfig d = parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"hidden_size":96,"intermediate_size":96,
    "num_hidden_layers":2,"num_attention_heads":12,"num_key_value_heads":3,"vocab_size":100})", "c");
  msg = error_of([&] { make_parallel_layout(d, 4, 0); }, &code);
  EXPECT_NE(msg.find("num_key_value_heads 3"), std::string::npos) << msg;
  // Vocab 6 at tp 4 splits 2, 2, 2, 0: the last rank would hold no rows.
  c = parse_hf_config(kQwen3_4B, "c");
  c.n_vocab = 6;
  msg = error_of([&] { make_parallel_layout(c, 4, 0); }, &code);
  EXPECT_EQ(code, StatusCode::kInvalidArg);
  EXPECT_NE(msg.find("leaves the last rank no vocabulary rows"), std::string::npos) << msg;
}

// Values past the bounds every computed size must fit in are corrupt, not huge models.
TEST(HfConfig, AbsurdSizesAreRefused) {
  for (const char* field : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers"}) {
    nlohmann::json j = nlohmann::json::parse(kQwen3_4B);
    j[field] = int64_t{1} << 40;
    StatusCode code{};
    const std::string msg = error_of([&] { validate_model_config(parse_hf_config(j.dump(), "c"), "c"); }, &code);
    EXPECT_EQ(code, StatusCode::kFormat) << field;
    EXPECT_NE(msg.find(std::string("field '") + field + "' is 1099511627776, more than"), std::string::npos)
        << msg;
  }
}

}  // namespace
}  // namespace shardlm
