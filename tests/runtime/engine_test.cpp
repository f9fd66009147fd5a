// End-to-end engine tests on tiny random checkpoints of every family (f32 and bf16), packed at
// TP = 1, 2, 4: TP=2/4 logits equal TP=1, greedy continuations agree, KV-cache decode equals a
// full recompute at every step, chunked prefill equals one-shot prefill, and bad pack sets
// (missing rank, mixed packs, wrong tp) fail with clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "packer/packer.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generate.h"
#include "tests/runtime/test_util.h"
#include "tests/runtime/tiny_checkpoint.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::TinyModelSpec;

std::string pack_tiny(const TinyModelSpec& spec, const fs::path& root, int tp) {
  const std::string model = (root / "model").string();
  if (!fs::exists(model + "/config.json")) test::write_tiny_checkpoint(spec, model);
  PackOptions o;
  o.model_dir = model;
  o.out_dir = (root / ("tp" + std::to_string(tp))).string();
  o.tp_size = tp;
  pack_checkpoint(o);
  return o.out_dir;
}

std::unique_ptr<Engine> open_engine(const std::string& dir, int64_t batch_tokens = 64) {
  EngineOptions eo;
  eo.pack_dir = dir;
  eo.activations = MatmulActivations::kF32;  // TP vs one rank at f32 tolerances
  eo.n_threads = 2;
  eo.n_ctx = 64;
  eo.max_batch_tokens = batch_tokens;
  return std::make_unique<Engine>(eo);
}

float range_of(const std::vector<float>& v) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return *hi - *lo;
}

const std::vector<int32_t> kPrompt = {1, 5, 17, 42, 96, 3, 77, 8, 60};

struct Case {
  const char* name;
  TinyModelSpec spec;
};

class EngineFamilyTest : public ::testing::TestWithParam<std::tuple<int, DType>> {};

std::vector<Case> cases() {
  return {{"llama", test::tiny_llama()},
          {"mistral", test::tiny_mistral()},
          {"qwen2", test::tiny_qwen2()},
          {"qwen3", test::tiny_qwen3()}};
}

TEST_P(EngineFamilyTest, TensorParallelMatchesSingleRankAndKvDecodeMatchesRecompute) {
  const auto [case_index, dtype] = GetParam();
  Case c = cases()[static_cast<size_t>(case_index)];
  c.spec.dtype = dtype;
  TempDir tmp(std::string("eng-") + c.name);

  std::vector<float> base_logits;
  std::vector<int32_t> base_greedy;
  for (int tp : {1, 2, 4}) {
    SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dtype) + " tp " + std::to_string(tp));
    const std::string dir = pack_tiny(c.spec, tmp.path(), tp);
    auto engine = open_engine(dir);
    ASSERT_EQ(engine->tp_size(), tp);
    EXPECT_EQ(engine->weight_bytes_copied(), 0u);  // CPU uses every weight in place
    std::vector<float> logits = engine->eval(kPrompt, true);
    engine->seq_rm(0);
    GenerateOptions go;
    go.max_new_tokens = 12;
    go.ignore_eos = true;
    std::vector<int32_t> greedy = generate(*engine, kPrompt, go).tokens;
    ASSERT_EQ(greedy.size(), 12u);
    if (tp == 1) {
      base_logits = logits;
      base_greedy = greedy;
    } else {
      const float err = test::max_abs_diff(logits.data(), base_logits.data(), logits.size());
      EXPECT_LE(err, 1e-5f * range_of(base_logits));
      EXPECT_EQ(greedy, base_greedy);
    }

    // KV-cache decode vs full recompute of the whole prefix, at every step.
    engine->seq_rm(0);
    auto fresh = open_engine(dir);
    std::vector<int32_t> seq = kPrompt;
    std::vector<float> step = engine->eval(kPrompt, false);
    for (int32_t tok : greedy) {
      fresh->seq_rm(0);
      std::vector<float> full = fresh->eval(seq, false);
      ASSERT_LE(test::max_abs_diff(step.data(), full.data(), full.size()), 1e-5f * range_of(full))
          << "at position " << seq.size();
      seq.push_back(tok);
      const int32_t one[1] = {tok};
      step = engine->eval(one, false);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, EngineFamilyTest,
                         ::testing::Combine(::testing::Range(0, 4),
                                            ::testing::Values(DType::kF32, DType::kBF16)),
                         [](const auto& info) {
                           return std::string(
                                      cases()[static_cast<size_t>(std::get<0>(info.param))].name) +
                                  "_" + dtype_name(std::get<1>(info.param));
                         });

TEST(EngineTest, ChunkedPrefillEqualsOneShot) {
  TempDir tmp("chunk");
  const std::string dir = pack_tiny(test::tiny_qwen3(), tmp.path(), 2);
  auto one = open_engine(dir, 64);
  auto chunked = open_engine(dir, 4);
  const auto a = one->eval(kPrompt, true);
  const auto b = chunked->eval(kPrompt, true);
  EXPECT_LE(test::max_abs_diff(a.data(), b.data(), a.size()), 1e-5f * range_of(a));
  EXPECT_EQ(one->eval_argmax(std::vector<int32_t>{4}),
            chunked->eval_argmax(std::vector<int32_t>{4}));
}

TEST(EngineTest, AContextShorterThanABlockStillGetsAPool) {
  // The auto-sized paged pool (EngineOptions::kv_blocks = -1) of a 4-token context: one block,
  // not none (which refused to open).
  TempDir tmp("short");
  const std::string dir = pack_tiny(test::tiny_qwen3(), tmp.path(), 1);
  EngineOptions eo;
  eo.pack_dir = dir;
  eo.n_threads = 2;
  eo.n_ctx = 4;
  Engine e(eo);
  EXPECT_EQ(e.kv_blocks(), 1);
  GenerateOptions go;
  go.max_new_tokens = 2;
  go.ignore_eos = true;
  EXPECT_EQ(generate(e, std::vector<int32_t>{1, 5}, go).tokens.size(), 2u);
}

TEST(EngineTest, KvFullIsAClearRecoverableError) {
  TempDir tmp("kvfull");
  const std::string dir = pack_tiny(test::tiny_llama(), tmp.path(), 1);
  EngineOptions eo;
  eo.pack_dir = dir;
  eo.n_ctx = 10;
  Engine engine(eo);
  engine.eval(kPrompt, false);  // 9 of 10
  try {
    engine.eval(std::vector<int32_t>{1, 2}, false);
    FAIL() << "expected kKvFull";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kKvFull);
    EXPECT_NE(std::string(e.what()).find("n_ctx 10"), std::string::npos) << e.what();
  }
  engine.eval(std::vector<int32_t>{1}, false);  // still usable
  EXPECT_EQ(engine.n_past(), 10);
}

TEST(EngineTest, BadPackSetsFailClearly) {
  TempDir tmp("badset");
  const std::string dir = pack_tiny(test::tiny_llama(), tmp.path(), 2);

  // Wrong tp requested.
  EngineOptions eo;
  eo.pack_dir = dir;
  eo.tp = 4;
  try {
    Engine e(eo);
    FAIL() << "expected an error for tp 4";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4"), std::string::npos) << e.what();
  }

  // Ranks from different packs: rank 1 replaced by another model's rank 1.
  TinyModelSpec other = test::tiny_llama();
  other.seed = 7;
  TempDir tmp2("badset2");
  const std::string dir2 = pack_tiny(other, tmp2.path(), 2);
  fs::copy_file(fs::path(dir2) / "rank-1-of-2.shardlm", fs::path(dir) / "rank-1-of-2.shardlm",
                fs::copy_options::overwrite_existing);
  eo.tp = 0;
  EXPECT_THROW(Engine e(eo), Error);

  // Missing rank.
  fs::remove(fs::path(dir) / "rank-1-of-2.shardlm");
  try {
    Engine e(eo);
    FAIL() << "expected an error for a missing rank";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank"), std::string::npos) << e.what();
  }
}

TEST(EngineTest, BadIdsAreRejectedBeforeRunning) {
  TempDir tmp("ids");
  auto engine = open_engine(pack_tiny(test::tiny_llama(), tmp.path(), 2));
  EXPECT_THROW(engine->eval(std::vector<int32_t>{1, 97}, false), Error);
  EXPECT_THROW(engine->eval(std::vector<int32_t>{}, false), Error);
  EXPECT_EQ(engine->n_past(), 0);
  engine->eval(std::vector<int32_t>{1, 96}, false);
}

}  // namespace
}  // namespace shardlm
