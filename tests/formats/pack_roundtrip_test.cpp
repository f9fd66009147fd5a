// Pack round trips: tiny checkpoints of every family packed at TP = 1, 2, 4 (including
// tp > n_head_kv); every rank's tensors equal the matching slices of the source tensors, computed
// here independently of the packer's recipes, and the ranks together rebuild every source tensor.
#include <gtest/gtest.h>

#include <set>

#include "formats/pack_reader.h"
#include "formats/tensor_names.h"
#include "packer/packer.h"
#include "runtime/core/status.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {
namespace tn = tensor_names;
using testing::TinyCheckpoint;
using testing::TinySpec;

std::vector<float> as_f32(const PackTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_dtype(t.data, t.dtype, out.data(), DType::kF32, out.size());
  return out;
}

// Rows [r0, r0 + n) of a source tensor viewed as [rows, cols] (1-D: cols = 1).
std::vector<float> src_rows(const TinyCheckpoint& ck, const std::string& name, int64_t r0, int64_t n) {
  const auto& v = ck.values.at(name);
  const auto& s = ck.shapes.at(name);
  const int64_t cols = s.size() > 1 ? s[1] : 1;
  return std::vector<float>(v.begin() + r0 * cols, v.begin() + (r0 + n) * cols);
}

// Columns [c0, c0 + n) of every row of a 2-D source tensor.
std::vector<float> src_cols(const TinyCheckpoint& ck, const std::string& name, int64_t c0, int64_t n) {
  const auto& v = ck.values.at(name);
  const auto& s = ck.shapes.at(name);
  std::vector<float> out;
  for (int64_t r = 0; r < s[0]; ++r) out.insert(out.end(), v.begin() + r * s[1] + c0, v.begin() + r * s[1] + c0 + n);
  return out;
}

std::vector<float> cat(std::vector<std::vector<float>> parts) {
  std::vector<float> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<float> round_to(std::vector<float> v, DType dt) {
  std::vector<uint8_t> tmp(v.size() * dtype_size(dt));
  convert_dtype(v.data(), DType::kF32, tmp.data(), dt, v.size());
  convert_dtype(tmp.data(), dt, v.data(), DType::kF32, v.size());
  return v;
}

std::string L(int64_t l, const char* rest) { return "model.layers." + std::to_string(l) + "." + rest; }

struct Case {
  std::string label;
  TinySpec spec;
  std::optional<DType> pack_dtype;
};

void check_case(const Case& c, int tp) {
  testing::TempDir dir;
  const TinyCheckpoint ck = testing::write_tiny_checkpoint(dir / "hf", c.spec);
  PackOptions o;
  o.model_dir = ck.dir;
  o.out_dir = dir / "pack";
  o.tp_size = tp;
  o.dtype = c.pack_dtype;
  o.plan.device_total_bytes = 1ull << 30;
  const PackResult res = pack_checkpoint(o);
  ASSERT_EQ(res.rank_paths.size(), static_cast<size_t>(tp));

  const TinySpec& s = c.spec;
  const bool qwen2 = s.model_type == "qwen2", qwen3 = s.model_type == "qwen3";
  const int64_t D = qwen2 ? s.n_embd / s.n_head : s.head_dim;
  const int64_t hl = s.n_head / tp, fl = s.n_ff / tp;
  const int64_t kvl = s.n_head_kv % tp == 0 ? s.n_head_kv / tp : 1;
  const DType wt = c.pack_dtype.value_or(*parse_dtype(s.dtype));
  const bool qkv_bias = qwen2 || s.attention_bias;

  // Rebuilt source tensors from all ranks.
  std::vector<float> embd_all, out_all;
  std::map<std::string, std::vector<float>> q_all, wo_cols, gate_all, up_all;
  std::map<std::string, std::set<int64_t>> kv_heads_seen;

  const PackSet set = find_pack_set(o.out_dir, tp);
  for (int r = 0; r < tp; ++r) {
    SCOPED_TRACE(c.label + " tp=" + std::to_string(tp) + " rank=" + std::to_string(r));
    auto pack = PackReader::open(set.rank_paths[r]);
    pack->verify_tensors();
    EXPECT_EQ(pack->parallel().tp_rank, r);
    EXPECT_EQ(pack->weight_dtype(), wt);
    EXPECT_TRUE(pack->has_file("tokenizer_config.json"));
    const auto gen = testing::read_file(ck.dir + "/generation_config.json");
    EXPECT_EQ(pack->file("generation_config.json"), std::string(gen.begin(), gen.end()));
    const int64_t per = (s.n_vocab + tp - 1) / tp;
    const int64_t vs = std::min<int64_t>(per * r, s.n_vocab), vl = std::min<int64_t>(per, s.n_vocab - vs);
    const int64_t kvs = s.n_head_kv % tp == 0 ? r * kvl : r / (tp / s.n_head_kv);

    auto expect_eq = [&](const std::string& pack_name, const std::vector<float>& want, DType dt) {
      const PackTensor& t = pack->require(pack_name);
      EXPECT_EQ(t.dtype, dt) << pack_name;
      EXPECT_EQ(as_f32(t), round_to(want, dt)) << pack_name;
    };
    expect_eq(tn::kTokEmbd, src_rows(ck, "model.embed_tokens.weight", vs, vl), wt);
    embd_all = cat({embd_all, as_f32(pack->require(tn::kTokEmbd))});
    if (s.tied) {
      EXPECT_EQ(pack->find(tn::kOutput), nullptr);
    } else {
      expect_eq(tn::kOutput, src_rows(ck, "lm_head.weight", vs, vl), wt);
      out_all = cat({out_all, as_f32(pack->require(tn::kOutput))});
    }
    expect_eq(tn::kOutputNorm, ck.values.at("model.norm.weight"), DType::kF32);
    for (int64_t l = 0; l < s.n_layer; ++l) {
      expect_eq(tn::blk(l, tn::kAttnNorm), ck.values.at(L(l, "input_layernorm.weight")), DType::kF32);
      expect_eq(tn::blk(l, tn::kFfnNorm), ck.values.at(L(l, "post_attention_layernorm.weight")), DType::kF32);
      expect_eq(tn::blk(l, tn::kWqkv),
                cat({src_rows(ck, L(l, "self_attn.q_proj.weight"), r * hl * D, hl * D),
                     src_rows(ck, L(l, "self_attn.k_proj.weight"), kvs * D, kvl * D),
                     src_rows(ck, L(l, "self_attn.v_proj.weight"), kvs * D, kvl * D)}),
                wt);
      const auto wqkv = as_f32(pack->require(tn::blk(l, tn::kWqkv)));
      q_all[std::to_string(l)] = cat({q_all[std::to_string(l)], std::vector<float>(wqkv.begin(), wqkv.begin() + hl * D * s.n_embd)});
      for (int64_t h = kvs; h < kvs + kvl; ++h) kv_heads_seen[std::to_string(l)].insert(h);
      if (qkv_bias) {
        expect_eq(tn::blk(l, tn::kBqkv),
                  cat({src_rows(ck, L(l, "self_attn.q_proj.bias"), r * hl * D, hl * D),
                       src_rows(ck, L(l, "self_attn.k_proj.bias"), kvs * D, kvl * D),
                       src_rows(ck, L(l, "self_attn.v_proj.bias"), kvs * D, kvl * D)}),
                  DType::kF32);
      } else {
        EXPECT_EQ(pack->find(tn::blk(l, tn::kBqkv)), nullptr);
      }
      if (qwen3) {
        expect_eq(tn::blk(l, tn::kQNorm), ck.values.at(L(l, "self_attn.q_norm.weight")), DType::kF32);
        expect_eq(tn::blk(l, tn::kKNorm), ck.values.at(L(l, "self_attn.k_norm.weight")), DType::kF32);
      }
      expect_eq(tn::blk(l, tn::kWo), src_cols(ck, L(l, "self_attn.o_proj.weight"), r * hl * D, hl * D), wt);
      if (s.attention_bias && s.model_type == "llama") {
        if (r == 0) {
          expect_eq(tn::blk(l, tn::kBo), ck.values.at(L(l, "self_attn.o_proj.bias")), DType::kF32);
        } else {
          EXPECT_EQ(pack->find(tn::blk(l, tn::kBo)), nullptr);
        }
      }
      expect_eq(tn::blk(l, tn::kWGateUp),
                cat({src_rows(ck, L(l, "mlp.gate_proj.weight"), r * fl, fl), src_rows(ck, L(l, "mlp.up_proj.weight"), r * fl, fl)}),
                wt);
      expect_eq(tn::blk(l, tn::kWDown), src_cols(ck, L(l, "mlp.down_proj.weight"), r * fl, fl), wt);
      const auto gu = as_f32(pack->require(tn::blk(l, tn::kWGateUp)));
      const size_t half = gu.size() / 2;
      gate_all[std::to_string(l)] = cat({gate_all[std::to_string(l)], std::vector<float>(gu.begin(), gu.begin() + half)});
      up_all[std::to_string(l)] = cat({up_all[std::to_string(l)], std::vector<float>(gu.begin() + half, gu.end())});
    }
  }
  // The ranks together rebuild each (row-split) source tensor.
  EXPECT_EQ(embd_all, round_to(ck.values.at("model.embed_tokens.weight"), wt));
  if (!s.tied) {
    EXPECT_EQ(out_all, round_to(ck.values.at("lm_head.weight"), wt));
  }
  for (int64_t l = 0; l < s.n_layer; ++l) {
    EXPECT_EQ(q_all[std::to_string(l)], round_to(ck.values.at(L(l, "self_attn.q_proj.weight")), wt));
    EXPECT_EQ(gate_all[std::to_string(l)], round_to(ck.values.at(L(l, "mlp.gate_proj.weight")), wt));
    EXPECT_EQ(up_all[std::to_string(l)], round_to(ck.values.at(L(l, "mlp.up_proj.weight")), wt));
    EXPECT_EQ(kv_heads_seen[std::to_string(l)].size(), static_cast<size_t>(s.n_head_kv));  // every kv head somewhere
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  TinySpec llama;  // GQA 4 heads / 2 kv heads: tp 4 replicates kv heads
  out.push_back({"llama-gqa-f32", llama, std::nullopt});
  TinySpec llama_bias = llama;
  llama_bias.attention_bias = true;
  llama_bias.n_head_kv = 1;  // MQA
  llama_bias.dtype = "BF16";
  llama_bias.n_vocab = 97;  // uneven vocab split
  out.push_back({"llama-mqa-bias-bf16", llama_bias, std::nullopt});
  TinySpec qwen2 = llama;
  qwen2.architecture = "Qwen2ForCausalLM";
  qwen2.model_type = "qwen2";
  qwen2.tied = true;
  qwen2.shards = 2;
  out.push_back({"qwen2-bias-tied-sharded", qwen2, std::nullopt});
  TinySpec qwen3 = llama;
  qwen3.architecture = "Qwen3ForCausalLM";
  qwen3.model_type = "qwen3";
  qwen3.head_dim = 12;  // != n_embd / n_head
  qwen3.n_head = 8;
  qwen3.n_head_kv = 4;
  out.push_back({"qwen3-qknorm-f32-to-bf16", qwen3, DType::kBF16});
  TinySpec mistral = llama;
  mistral.architecture = "MistralForCausalLM";
  mistral.model_type = "mistral";
  mistral.dtype = "F16";
  out.push_back({"mistral-f16-to-f32", mistral, DType::kF32});
  return out;
}

class PackRoundTrip : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(PackRoundTrip, RanksHoldExactSlicesAndRebuildSources) {
  const auto [case_index, tp] = GetParam();
  check_case(cases()[static_cast<size_t>(case_index)], tp);
}

INSTANTIATE_TEST_SUITE_P(FamiliesAndTp, PackRoundTrip,
                         ::testing::Combine(::testing::Range(0, 5), ::testing::Values(1, 2, 4)),
                         [](const auto& info) {
                           std::string n = cases()[static_cast<size_t>(std::get<0>(info.param))].label + "_tp" +
                                           std::to_string(std::get<1>(info.param));
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace shardlm
