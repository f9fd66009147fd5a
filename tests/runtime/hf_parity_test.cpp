// Parity with Hugging Face transformers: every fixture in tests/fixtures/hf/<name>/ (a tiny
// random model + reference.json computed in f32 by tools/fixtures/make_hf_fixtures.py) is
// packed at TP = 1, 2 and 4 (where the heads and intermediate size divide), and
//   - the prompt's logits match prefill_logits: max abs error <= tol * (max - min) of the
//     reference logits, tol = 1e-4 for f32 and bf16 weights alike (bf16 weights are widened
//     exactly and computed in f32, as the reference does, so no extra error is expected),
//   - the greedy continuation equals greedy_ids token for token (eos ignored),
//   - decoding with the KV cache equals the prompt+continuation recomputed in one prefill.
// Prints one "PARITY" line per case (the table for the issue report).
// The bf16 activation mode (activations rounded to bf16 before each matmul with bf16 weights, as
// PyTorch computes a bf16 model) is checked on the bf16 fixtures against the same f32 reference
// with HF's own bf16 error as the budget: max abs error <= native_bf16_prefill_max_abs_diff (HF's
// bf16 run also rounds every intermediate tensor, which this mode does not; measured 0.28-0.49 of
// that budget), through the decode-sized kernels (the prompt) and the prefill GEMM (prompt +
// continuation in one step).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "formats/model_config.h"
#include "packer/packer.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generate.h"
#include "tests/runtime/test_util.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;

constexpr float kRelTol = 1e-4f;

std::vector<fs::path> fixture_dirs() { return test::hf_fixture_dirs(SHARDLM_FIXTURES_DIR); }

class HfParityTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(HfParityTest, LogitsAndGreedyMatchAtEveryTp) {
  const fs::path dir = GetParam();
  if (dir.empty()) GTEST_SKIP() << "no fixtures under " << SHARDLM_FIXTURES_DIR << "/hf";
  const test::HfReference ref = test::load_hf_reference(dir);
  const std::vector<int32_t>& prompt = ref.prompt;
  const std::vector<int32_t>& greedy_ref = ref.greedy;
  const std::vector<float>& ref_logits = ref.prefill_logits;
  const float range = ref.logit_range;
  const std::string& wdtype = ref.weights_dtype;

  test::TempDir tmp("hf-" + dir.filename().string());
  int tested = 0;
  for (int tp : {1, 2, 4}) {
    PackOptions po;
    po.model_dir = dir.string();
    po.out_dir = (tmp.path() / ("tp" + std::to_string(tp))).string();
    po.tp_size = tp;
    try {
      pack_checkpoint(po);
    } catch (const Error& e) {
      if (e.code() == StatusCode::kInvalidArg) {  // heads / n_ff do not divide by tp
        std::printf("PARITY %-28s tp %d  skipped: %s\n", dir.filename().c_str(), tp, e.what());
        continue;
      }
      throw;
    }
    SCOPED_TRACE("tp " + std::to_string(tp));
    EngineOptions eo;
    eo.pack_dir = po.out_dir;
    eo.n_threads = 2;
    eo.n_ctx = static_cast<int64_t>(prompt.size() + greedy_ref.size()) + 1;
    eo.kv_dtype = DType::kF32;  // the paged pool generate() runs on: f32 for the parity tolerance
    eo.activations = MatmulActivations::kF32;  // exact: the f32 tolerance (the default may round)
    Engine engine(eo);
    ASSERT_EQ(engine.config().n_vocab, ref.n_vocab);

    const std::vector<float> logits = engine.eval(prompt, true);
    const float err = test::max_abs_diff(logits.data(), ref_logits.data(), logits.size());
    EXPECT_LE(err, kRelTol * range) << "max abs error " << err << ", logit range " << range;

    engine.seq_rm(0);
    GenerateOptions go;
    go.max_new_tokens = static_cast<int64_t>(greedy_ref.size());
    go.ignore_eos = true;
    go.prompt_logits = true;
    const GenerateResult gen = generate(engine, prompt, go);
    const std::vector<int32_t>& greedy = gen.tokens;
    EXPECT_EQ(greedy, greedy_ref);
    // Every prompt position's logits through the step engine (paged KV) as well.
    ASSERT_EQ(gen.prompt_logits.size(), ref_logits.size());
    EXPECT_LE(test::max_abs_diff(gen.prompt_logits.data(), ref_logits.data(), ref_logits.size()),
              kRelTol * range);

    // KV decode == recompute: the last decode step's logits vs one prefill of everything.
    engine.seq_rm(0);
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), greedy_ref.begin(), greedy_ref.end() - 1);
    const std::vector<float> full = engine.eval(all, false);
    engine.seq_rm(0);
    std::vector<float> step = engine.eval(prompt, false);
    for (size_t i = 0; i + 1 < greedy_ref.size(); ++i) {
      step = engine.eval(std::vector<int32_t>{greedy_ref[i]}, false);
    }
    const float kv_err = test::max_abs_diff(step.data(), full.data(), full.size());
    EXPECT_LE(kv_err, 1e-5f * range);

    std::printf(
        "PARITY %-28s %-8s tp %d  %-8s max_abs_err %.3g  (%.2e of range %.3g)  "
        "greedy %s (%zu tokens)  kv-vs-recompute %.3g\n",
        dir.filename().c_str(), family_name(engine.config().family), tp, wdtype.c_str(), err,
        err / range, range, greedy == greedy_ref ? "match" : "MISMATCH", greedy_ref.size(), kv_err);
    ++tested;
  }
  EXPECT_GE(tested, 1);
}

TEST_P(HfParityTest, Bf16ActivationsStayWithinHfsOwnBf16Error) {
  const fs::path dir = GetParam();
  if (dir.empty()) GTEST_SKIP() << "no fixtures under " << SHARDLM_FIXTURES_DIR << "/hf";
  const test::HfReference ref = test::load_hf_reference(dir);
  if (ref.weights_dtype != "bfloat16") GTEST_SKIP() << "f32 weights: the mode does not apply";
  ASSERT_GT(ref.native_bf16_max_abs_diff, 0.0f) << "reference.json lacks HF's bf16 error";
  const float budget = ref.native_bf16_max_abs_diff;
  const size_t n_prompt = ref.prompt.size(), n_vocab = static_cast<size_t>(ref.n_vocab);
  test::TempDir tmp("hf-bf16a-" + dir.filename().string());
  for (int tp : {1, 2}) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    PackOptions po;
    po.model_dir = dir.string();
    po.out_dir = (tmp.path() / ("tp" + std::to_string(tp))).string();
    po.tp_size = tp;
    pack_checkpoint(po);
    EngineOptions eo;
    eo.pack_dir = po.out_dir;
    eo.n_threads = 2;
    eo.n_ctx = static_cast<int64_t>(n_prompt + ref.greedy.size()) + 1;
    eo.kv_dtype = DType::kF32;
    eo.activations = MatmulActivations::kBf16;
    Engine engine(eo);
    const std::vector<float> logits = engine.eval(ref.prompt, true);
    const float err = test::max_abs_diff(logits.data(), ref.prefill_logits.data(), logits.size());
    EXPECT_LE(err, budget) << "prompt (" << n_prompt << " tokens, GEMV)";
    // More than 16 tokens in one step take the GEMM; the prompt's rows are causal, so they must
    // match the reference as well.
    engine.seq_rm(0);
    std::vector<int32_t> all = ref.prompt;
    all.insert(all.end(), ref.greedy.begin(), ref.greedy.end());
    ASSERT_GT(all.size(), 16u);
    const std::vector<float> all_logits = engine.eval(all, true);
    const float err_gemm =
        test::max_abs_diff(all_logits.data(), ref.prefill_logits.data(), n_prompt * n_vocab);
    EXPECT_LE(err_gemm, budget) << "prompt + continuation (" << all.size() << " tokens, GEMM)";
    // Exact mode for contrast: the rounding must show (the mode is not a no-op).
    EXPECT_GT(err, 1e-4f * ref.logit_range);
    std::printf("PARITY %-28s bf16-activations tp %d  max_abs_err %.3g (GEMV) %.3g (GEMM)  "
                "HF bf16 %.3g  (%.2e of range %.3g)\n",
                dir.filename().c_str(), tp, err, err_gemm, ref.native_bf16_max_abs_diff,
                std::max(err, err_gemm) / ref.logit_range, ref.logit_range);
  }
}

std::vector<fs::path> params() {
  auto dirs = fixture_dirs();
  if (dirs.empty()) dirs.push_back(fs::path());  // one placeholder that skips
  return dirs;
}

TEST(HfParityFixtures, Present) {
  if (fixture_dirs().empty()) GTEST_SKIP() << "no fixtures under " << SHARDLM_FIXTURES_DIR << "/hf";
  SUCCEED();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfParityTest, ::testing::ValuesIn(params()),
                         [](const auto& info) { return test::fixture_param_name(info.param); });

}  // namespace
}  // namespace shardlm
