// Quantized packs (shardlm-pack --weights int8|int4|int4g128) end to end on the committed demo
// target (models/demo/target):
//   - perplexity of the held-out sample through the runtime: int8 within +1% of bf16, int4 and
//     int4g128 within +6% (TP 1 and 2, and with --quantize-embeddings too; int4g128 at TP 1: the
//     demo target's o_proj has 384 inputs, 192 per rank at TP 2, which splits a 128-input group);
//   - greedy decoding: the quantized packs at TP 1 and TP 2 produce the same tokens (and TP 1, 2
//     and 4 on a small random model); agreement with the bf16 pack over 256 tokens is reported (a
//     property in the test's XML output);
//   - bad input: a TP size that splits a quantization block (or an int4g128 scale group) is
//     refused with an error that says what to do;
//   - the Vulkan backend's logits for quantized packs equal the CPU backend's.
// Kernel-level checks (every quantized kernel against kernels/ref) are in
// tests/runtime/kernels_test.cpp; speed is docs/benchmarks.md's business.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "packer/packer.h"
#include "run_command.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;

const fs::path kDemo = fs::path(SHARDLM_MODELS_DIR) / "demo";

std::string pack(const std::string& out, int tp, std::optional<DType> weights,
                 bool embeddings = false) {
  PackOptions o;
  o.model_dir = (kDemo / "target").string();
  o.out_dir = out;
  o.tp_size = tp;
  o.quantize = weights;
  o.quantize_embeddings = embeddings;
  pack_checkpoint(o);
  return out;
}

double perplexity(const std::string& pack_dir, const std::string& kv_dtype = "bf16") {
  const testing::CliResult r =
      testing::run_command(std::string(SHARDLM_BENCH_BIN) + " --pack " + pack_dir +
                           " --perplexity " + (kDemo / "heldout_sample.py").string() +
                           " --ppl-ctx 256 --threads 2 --json --kv-dtype " + kv_dtype);
  EXPECT_EQ(r.code, 0) << r.out;
  const size_t at = r.out.rfind("\n{");
  return nlohmann::json::parse(at == std::string::npos ? r.out : r.out.substr(at + 1))
      .at("perplexity")
      .get<double>();
}

std::vector<int32_t> greedy(const std::string& pack_dir, int64_t n,
                            std::vector<int32_t> prompt = {100, 200, 300, 400, 500, 600, 700,
                                                           800}) {
  EngineOptions eo;
  eo.pack_dir = pack_dir;
  eo.n_threads = 2;
  eo.n_ctx = 512;
  Engine e(eo);
  // "def fibonacci(n):\n" in the demo tokenizer would do; any fixed ids in the vocabulary do too.
  std::vector<int32_t> out;
  int32_t next = e.eval_argmax(prompt);
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(next);
    next = e.eval_argmax(std::span<const int32_t>(&next, 1));
  }
  return out;
}

class QuantizedPackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kDemo / "target" / "config.json")) return;
    tmp_ = new testing::TempDir();
    pack(*tmp_ / "bf16-tp1", 1, std::nullopt);
    pack(*tmp_ / "int8-tp1", 1, DType::kInt8);
    pack(*tmp_ / "int8-tp2", 2, DType::kInt8);
    pack(*tmp_ / "int8e-tp1", 1, DType::kInt8, true);
    pack(*tmp_ / "int4-tp1", 1, DType::kInt4);
    pack(*tmp_ / "int4-tp2", 2, DType::kInt4);
    pack(*tmp_ / "int4e-tp1", 1, DType::kInt4, true);
    pack(*tmp_ / "int4g128-tp1", 1, DType::kInt4G128);
    pack(*tmp_ / "int4g128e-tp1", 1, DType::kInt4G128, true);
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  void SetUp() override {
    if (tmp_ == nullptr) GTEST_SKIP() << "no demo models under " << kDemo;
  }
  static testing::TempDir* tmp_;
};
testing::TempDir* QuantizedPackTest::tmp_ = nullptr;

TEST_F(QuantizedPackTest, PerplexityWithinOnePercentForInt8AndSixForInt4) {
  const double bf16 = perplexity(*tmp_ / "bf16-tp1");
  RecordProperty("perplexity_bf16", std::to_string(bf16));
  for (const char* name : {"int8-tp1", "int8-tp2", "int8e-tp1", "int4-tp1", "int4-tp2", "int4e-tp1",
                           "int4g128-tp1", "int4g128e-tp1"}) {
    const double q = perplexity(*tmp_ / name);
    const double bound = name[3] == '8' ? 0.01 : 0.06;
    EXPECT_LT(q / bf16 - 1, bound) << name << ": " << q << " vs bf16 " << bf16;
    EXPECT_NE(q, bf16) << name << ": the same perplexity as bf16: was anything quantized?";
    RecordProperty(std::string("perplexity_") + name, std::to_string(q));
    std::printf("perplexity %s %.4f (bf16 %.4f, %+.3f%%)\n", name, q, bf16, 100 * (q / bf16 - 1));
  }
}

// The f8e4m3 KV cache (half the bytes of bf16) on the demo target's held-out text, with bf16
// and with int4 weights: within +1% of the same pack with a bf16 cache (measured +0.26% bf16).
TEST_F(QuantizedPackTest, F8E4M3KvCacheKeepsPerplexityWithinOnePercent) {
  for (const char* name : {"bf16-tp1", "int4e-tp1"}) {
    const double bf16_kv = perplexity(*tmp_ / name);
    const double f8_kv = perplexity(*tmp_ / name, "f8e4m3");
    EXPECT_LT(f8_kv / bf16_kv - 1, 0.01) << name << ": " << f8_kv << " vs " << bf16_kv;
    EXPECT_NE(f8_kv, bf16_kv) << name << ": the same perplexity: was the cache f8e4m3?";
    RecordProperty(std::string("perplexity_f8kv_") + name, std::to_string(f8_kv));
    std::printf("perplexity %s, f8e4m3 KV %.4f (bf16 KV %.4f, %+.3f%%)\n", name, f8_kv, bf16_kv,
                100 * (f8_kv / bf16_kv - 1));
  }
}

TEST_F(QuantizedPackTest, QuantizedPacksAgreeAcrossTpAndWithBf16) {
  const std::vector<int32_t> f = greedy(*tmp_ / "bf16-tp1", 256);
  for (const char* scheme : {"int8", "int4", "int4g128"}) {
    const std::string tp1 = *tmp_ / (std::string(scheme) + "-tp1");
    if (fs::exists(*tmp_ / (std::string(scheme) + "-tp2"))) {  // int4g128: TP 1 only (above)
      const std::vector<int32_t> a = greedy(tp1, 64);
      const std::vector<int32_t> b = greedy(*tmp_ / (std::string(scheme) + "-tp2"), 64);
      EXPECT_EQ(a, b) << scheme << " at TP 1 and TP 2 decode differently";
    }
    const std::vector<int32_t> q = greedy(tp1, 256);
    size_t first_diff = 0;
    while (first_diff < q.size() && q[first_diff] == f[first_diff]) ++first_diff;
    size_t equal = 0;
    for (size_t i = 0; i < q.size(); ++i) equal += q[i] == f[i];
    RecordProperty(std::string("greedy_") + scheme + "_bf16_identical_prefix",
                   static_cast<int>(first_diff));
    std::printf("%s vs bf16 greedy: the first %zu of 256 tokens are identical (%zu equal in all)\n",
                scheme, first_diff, equal);
    EXPECT_GT(first_diff, 0u) << scheme << " disagrees with bf16 on the very first token";
  }
}

// TP 1, 2 and 4 of one small random model (every row-parallel matrix keeps whole blocks at TP 4,
// and whole 128-input groups: 512 attention and ff columns): the same greedy tokens, for every
// scheme.
TEST(QuantizedPackTp, Tp1And2And4DecodeTheSameTokens) {
  testing::TempDir tmp;
  testing::TinySpec spec;
  spec.n_embd = 128;
  spec.n_head = 4;
  spec.n_head_kv = 4;
  spec.head_dim = 128;
  spec.n_ff = 512;
  testing::write_tiny_checkpoint(tmp / "ckpt", spec);
  for (DType dt : {DType::kInt8, DType::kInt4, DType::kInt4G128}) {
    std::vector<std::vector<int32_t>> runs;
    for (int tp : {1, 2, 4}) {
      PackOptions o;
      o.model_dir = tmp / "ckpt";
      o.out_dir = tmp / (std::string(dtype_name(dt)) + "-tp" + std::to_string(tp));
      o.tp_size = tp;
      o.quantize = dt;
      pack_checkpoint(o);
      runs.push_back(greedy(o.out_dir, 32, {1, 5, 9, 17, 33, 65}));
    }
    EXPECT_EQ(runs[0], runs[1]) << dtype_name(dt) << ": TP 1 and TP 2 differ";
    EXPECT_EQ(runs[0], runs[2]) << dtype_name(dt) << ": TP 1 and TP 4 differ";
  }
}

TEST(QuantizedPackErrors, ATpSizeThatSplitsABlockIsRefused) {
  testing::TempDir tmp;
  testing::TinySpec spec;  // n_head 4 x head_dim 8: o_proj has 32 inputs, 16 per rank at TP 2
  testing::write_tiny_checkpoint(tmp / "ckpt", spec);
  for (DType dt : {DType::kInt8, DType::kInt4}) {
    PackOptions o;
    o.model_dir = tmp / "ckpt";
    o.out_dir = tmp / (std::string("out-") + dtype_name(dt));
    o.tp_size = 2;
    o.quantize = dt;
    try {
      pack_checkpoint(o);
      ADD_FAILURE() << "packed " << dtype_name(dt) << " at TP 2 with 16-input rows";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
      const std::string m = e.what();
      EXPECT_NE(m.find("blk.0.wo"), std::string::npos) << m;
      EXPECT_NE(m.find("splits a block"), std::string::npos) << m;
      EXPECT_NE(m.find(dtype_name(dt)), std::string::npos) << m;
    }
    EXPECT_FALSE(fs::exists(fs::path(o.out_dir) / "rank-0-of-2.shardlm"));
    o.tp_size = 1;  // whole blocks at TP 1
    EXPECT_NO_THROW(pack_checkpoint(o));
  }
}

// int4g128 on the demo target at TP 2: o_proj's 384 inputs split into 192 per rank, whole blocks
// of 32 but not whole 128-input scale groups. The message names the tensor and the group and
// points at int4.
TEST(QuantizedPackErrors, ATpSizeThatSplitsAnInt4G128ScaleGroupIsRefused) {
  if (!fs::exists(kDemo / "target" / "config.json"))
    GTEST_SKIP() << "no demo models under " << kDemo;
  testing::TempDir tmp;
  try {
    pack(tmp / "out", 2, DType::kInt4G128);
    ADD_FAILURE() << "packed int4g128 at TP 2 with 192-input o_proj slices";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
    const std::string m = e.what();
    EXPECT_NE(m.find(".wo"), std::string::npos) << m;
    EXPECT_NE(m.find("192 of its 384"), std::string::npos) << m;
    EXPECT_NE(m.find("splits a scale group"), std::string::npos) << m;
    EXPECT_NE(m.find("int4g128 scale group of 128"), std::string::npos) << m;
    EXPECT_NE(m.find("--weights int4"), std::string::npos) << m;
  }
  EXPECT_FALSE(fs::exists(fs::path(tmp / "out") / "rank-0-of-2.shardlm"));
  EXPECT_NO_THROW(pack(tmp / "out-int4", 2, DType::kInt4));  // blocks of 32 fit
}

// A model whose rows are not whole blocks at any TP size gets a message saying so, not advice
// about the TP size.
TEST(QuantizedPackErrors, RowsThatAreNotWholeBlocksAreRefusedAtEveryTpSize) {
  testing::TempDir tmp;
  testing::TinySpec spec;
  spec.n_embd = 48;  // 1.5 blocks of 32
  testing::write_tiny_checkpoint(tmp / "ckpt", spec);
  PackOptions o;
  o.model_dir = tmp / "ckpt";
  o.out_dir = tmp / "out";
  o.tp_size = 1;
  o.quantize = DType::kInt8;
  try {
    pack_checkpoint(o);
    ADD_FAILURE() << "packed int8 with 48-input rows";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
    const std::string m = e.what();
    EXPECT_NE(m.find("48 input columns"), std::string::npos) << m;
    EXPECT_NE(m.find("cannot be packed with quantized weights"), std::string::npos) << m;
    EXPECT_EQ(m.find("TP size"), std::string::npos) << m;
  }
}

#if defined(SHARDLM_HAVE_VULKAN_TESTS)
// Quantized packs on the Vulkan backend (gemv_quant.comp, embed.comp; lavapipe here): a 32-token
// prefill's logits equal the CPU backend's exact mode within f32 summation error, with and
// without quantized embeddings, and decoding runs.
TEST(QuantizedPackVulkan, LogitsMatchTheCpuBackend) {
  testing::TempDir tmp;
  testing::TinySpec spec;
  spec.n_embd = 128;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.head_dim = 32;
  spec.n_ff = 256;
  spec.n_vocab = 128;
  testing::write_tiny_checkpoint(tmp / "ckpt", spec);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 32; ++i) prompt.push_back((i * 37 + 3) % 128);
  for (DType dt : {DType::kInt8, DType::kInt4, DType::kInt4G128}) {
    for (bool embeddings : {false, true}) {
      PackOptions o;
      o.model_dir = tmp / "ckpt";
      o.out_dir = tmp / (std::string(dtype_name(dt)) + (embeddings ? "e" : ""));
      o.quantize = dt;
      o.quantize_embeddings = embeddings;
      pack_checkpoint(o);
      std::vector<float> logits[2];
      for (int b = 0; b < 2; ++b) {
        EngineOptions eo;
        eo.pack_dir = o.out_dir;
        eo.n_ctx = 128;
        eo.backend = b == 0 ? "cpu" : "vulkan";
        eo.activations = MatmulActivations::kF32;
        try {
          Engine e(eo);
          // Every position's logits: the lm_head runs on 32 rows, so the CPU's GEMM keeps f32
          // activations (a 1-row lm_head would go through its int8-activation GEMV).
          logits[b] = e.eval(prompt, true);
          if (b == 1) {
            int32_t next = e.eval_argmax(std::span<const int32_t>(&prompt[0], 1));
            for (int i = 0; i < 8; ++i) next = e.eval_argmax(std::span<const int32_t>(&next, 1));
            EXPECT_GE(next, 0);
            EXPECT_LT(next, spec.n_vocab);
          }
        } catch (const Error& err) {
          if (b == 1 && err.code() == StatusCode::kBackend)
            GTEST_SKIP() << "no Vulkan device here: " << err.what();
          throw;
        }
      }
      ASSERT_EQ(logits[0].size(), logits[1].size());
      float max_diff = 0, max_abs = 0;
      for (size_t i = 0; i < logits[0].size(); ++i) {
        max_diff = std::max(max_diff, std::fabs(logits[0][i] - logits[1][i]));
        max_abs = std::max(max_abs, std::fabs(logits[0][i]));
      }
      EXPECT_GT(max_abs, 0.1f);
      EXPECT_LT(max_diff, 1e-4f * max_abs) << dtype_name(dt) << (embeddings ? " + embeddings" : "");
    }
  }
}
#endif

}  // namespace
}  // namespace shardlm
