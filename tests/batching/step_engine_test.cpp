// The step engine end to end on the committed Hugging Face fixtures (tests/fixtures/hf):
//   - alone: one request through the step engine gives the HF greedy continuation and the
//     one-sequence engine's logits (f32 KV);
//   - batched == alone: 8 requests of different prompt lengths run together give every request
//     the greedy tokens it gets alone, and logits within the parity tolerance, at TP 1, 2, 4,
//     with bf16 and f32 KV; seeded sampling likewise;
//   - prefix cache: a shared prefix is computed once (counted), results equal the uncached run;
//   - preemption: a pool too small for all requests preempts and recomputes, every output equals
//     its solo run, and the pool is wholly free at the end;
//   - requests that can never fit are refused at submit with both numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>

#include "packer/packer.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generate.h"
#include "runtime/engine/step_engine.h"
#include "tests/batching/step_test_util.h"
#include "tests/runtime/test_util.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;

constexpr float kRelTol = 1e-4f;  // the HF parity tolerance (hf_parity_test.cpp), f32 KV
constexpr float kBf16KvRelTol = 1e-2f;  // bf16 KV: see AloneMatchesHfAndBatchedMatchesAlone

std::vector<fs::path> fixtures() {
  return test::hf_fixture_dirs(SHARDLM_FIXTURES_DIR);
}

// Eight prompts of different lengths (1..61 tokens) from the fixture's prompt and seeded ids.
std::vector<std::vector<int32_t>> prompts_for(const test::HfReference& ref, int n = 8) {
  std::vector<std::vector<int32_t>> out;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(ref.n_vocab - 1));
  const int lens[] = {1, 9, 17, 31, 40, 5, 61, 23, 12, 33, 2, 48};
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> p = ref.prompt;
    p.resize(std::min(p.size(), static_cast<size_t>(lens[i % 12])));
    while (static_cast<int>(p.size()) < lens[i % 12]) p.push_back(id(rng));
    out.push_back(p);
  }
  return out;
}

TokenRequest greedy_request(const std::vector<int32_t>& prompt, int64_t n_new) {
  TokenRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.max_new_tokens = n_new;
  r.logits = true;
  return r;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logits;
  TokenResult result;
};

// Runs `requests` together through one step engine on `engine`.
std::vector<Outcome> run_together(Engine& engine, const std::vector<TokenRequest>& requests,
                                  const StepEngineOptions& so = {}, StepEngineStats* stats = nullptr) {
  StepEngine se(engine, so);
  std::vector<RequestId> ids;
  for (const TokenRequest& r : requests) ids.push_back(se.submit(r));
  se.run_to_completion();
  std::vector<Outcome> out;
  for (RequestId id : ids) {
    TokenResult r = se.take_result(id);
    out.push_back({r.tokens, r.logits, r});
  }
  EXPECT_EQ(se.block_manager().n_used(), 0) << "blocks still held after every request finished";
  if (stats) *stats = se.stats();
  return out;
}

class StepEngineFixtureTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(StepEngineFixtureTest, AloneMatchesHfAndBatchedMatchesAlone) {
  const fs::path dir = GetParam();
  if (dir.empty()) GTEST_SKIP() << "no HF fixtures";
  const test::HfReference ref = test::load_hf_reference(dir);
  test::TempDir tmp("step-" + dir.filename().string());
  int tested = 0;
  for (int tp : {1, 2, 4}) {
    const std::string pack = pack_at(dir, tmp.path(), tp);
    if (pack.empty()) continue;
    SCOPED_TRACE("tp " + std::to_string(tp));
    const int64_t n_new = static_cast<int64_t>(ref.greedy.size());

    // Alone, f32 KV: the HF greedy continuation, and the prompt's last-row logits of HF.
    {
      auto engine = open_paged(pack, 64, DType::kF32);
      const std::vector<Outcome> alone = run_together(*engine, {greedy_request(ref.prompt, n_new)});
      EXPECT_EQ(alone[0].tokens, ref.greedy);
      const size_t V = static_cast<size_t>(ref.n_vocab);
      const float* last_ref = ref.prefill_logits.data() + (ref.prompt.size() - 1) * V;
      ASSERT_GE(alone[0].logits.size(), V);
      EXPECT_LE(test::max_abs_diff(alone[0].logits.data(), last_ref, V), kRelTol * ref.logit_range);
    }

    for (DType kv : {DType::kBF16, DType::kF32}) {
      SCOPED_TRACE(std::string("kv ") + dtype_name(kv));
      auto engine = open_paged(pack, 128, kv);
      const auto prompts = prompts_for(ref);
      std::vector<TokenRequest> reqs;
      for (const auto& p : prompts) reqs.push_back(greedy_request(p, 12));
      std::vector<Outcome> alone;
      for (const TokenRequest& r : reqs) alone.push_back(run_together(*engine, {r})[0]);
      const std::vector<Outcome> batched = run_together(*engine, reqs);
      // f32 KV: the parity tolerance. bf16 KV: a K/V element computed a few f32 ulps apart
      // alone and batched (GEMV vs GEMM order) can round to neighbouring bf16 values (2^-8
      // apart), so logits may differ by that much more: 1e-2 of the logit range.
      const float tol = (kv == DType::kF32 ? kRelTol : kBf16KvRelTol) * ref.logit_range;
      for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(batched[i].tokens, alone[i].tokens) << "request " << i;
        ASSERT_EQ(batched[i].logits.size(), alone[i].logits.size());
        EXPECT_LE(test::max_abs_diff(batched[i].logits.data(), alone[i].logits.data(),
                                     alone[i].logits.size()),
                  tol)
            << "request " << i;
      }
    }
    ++tested;
  }
  EXPECT_GE(tested, 1);
}

class StepEngineBf16FixtureTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(StepEngineBf16FixtureTest, Bf16ActivationsBatchedMatchesAloneAndDeterministicIsBitIdentical) {
  // The bf16 activation mode on the bf16 fixtures (it changes nothing for f32 weights): batched
  // equals alone as in f32 mode; deterministic mode stays bit-identical alone, batched and
  // chunked; logits stay near HF's (which come from bf16 matmuls) and differ from f32 mode's.
  const fs::path dir = GetParam();
  if (dir.empty()) GTEST_SKIP() << "no HF fixtures";
  const test::HfReference ref = test::load_hf_reference(dir);
  test::TempDir tmp("step-bf16act-" + dir.filename().string());
  const std::string pack = pack_at(dir, tmp.path(), 1);
  ASSERT_FALSE(pack.empty());
  const auto bf16 = MatmulActivations::kBf16;
  const size_t V = static_cast<size_t>(ref.n_vocab);
  const float* last_ref = ref.prefill_logits.data() + (ref.prompt.size() - 1) * V;
  {
    auto exact = open_paged(pack, 64, DType::kF32);
    auto rounded = open_paged(pack, 64, DType::kF32, 16, 256, 64, false, bf16);
    const TokenRequest r = greedy_request(ref.prompt, 1);
    const Outcome a = run_together(*exact, {r})[0], b = run_together(*rounded, {r})[0];
    ASSERT_GE(b.logits.size(), V);
    const float to_exact = test::max_abs_diff(a.logits.data(), b.logits.data(), V);
    EXPECT_GT(to_exact, 0.0f) << "bf16 activations gave the f32 logits: the mode did nothing";
    EXPECT_LE(test::max_abs_diff(b.logits.data(), last_ref, V), kBf16KvRelTol * ref.logit_range);
  }
  const auto prompts = prompts_for(ref);
  std::vector<TokenRequest> reqs;
  for (const auto& p : prompts) reqs.push_back(greedy_request(p, 12));
  for (bool deterministic : {false, true}) {
    SCOPED_TRACE(deterministic ? "deterministic" : "default");
    auto engine = open_paged(pack, 128, DType::kBF16, 16, 256, 64, deterministic, bf16);
    std::vector<Outcome> alone;
    for (const TokenRequest& r : reqs) alone.push_back(run_together(*engine, {r})[0]);
    std::vector<std::vector<Outcome>> runs = {run_together(*engine, reqs)};
    if (deterministic) {
      auto chunked = open_paged(pack, 128, DType::kBF16, 16, 256, 7, true, bf16);
      runs.push_back(run_together(*chunked, reqs));
    }
    for (const std::vector<Outcome>& got : runs) {
      for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(got[i].tokens, alone[i].tokens) << "request " << i;
        ASSERT_EQ(got[i].logits.size(), alone[i].logits.size());
        const float d =
            test::max_abs_diff(got[i].logits.data(), alone[i].logits.data(), alone[i].logits.size());
        if (deterministic) {
          EXPECT_EQ(d, 0.0f) << "request " << i;
        } else {
          EXPECT_LE(d, kBf16KvRelTol * ref.logit_range) << "request " << i;
        }
      }
    }
  }
}

std::vector<fs::path> params() {
  auto dirs = fixtures();
  if (dirs.empty()) dirs.push_back(fs::path());
  return dirs;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, StepEngineFixtureTest, ::testing::ValuesIn(params()),
                         [](const auto& info) { return test::fixture_param_name(info.param); });

// The fixtures with bf16 weights (the bf16 activation mode changes nothing for f32 weights).
std::vector<fs::path> bf16_params() {
  std::vector<fs::path> out;
  for (const fs::path& d : fixtures()) {
    if (d.filename().string().find("_bf16") != std::string::npos) out.push_back(d);
  }
  if (out.empty()) out.push_back(fs::path());
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, StepEngineBf16FixtureTest, ::testing::ValuesIn(bf16_params()),
                         [](const auto& info) { return test::fixture_param_name(info.param); });

// The first fixture packed at tp 2, shared by the policy tests below.
class StepEnginePolicyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dirs = fixtures();
    if (dirs.empty()) return;
    tmp_ = new test::TempDir("step-policy");
    fixture_ = dirs.front();
    ref_ = new test::HfReference(test::load_hf_reference(fixture_));
    pack_ = pack_at(fixture_, tmp_->path(), 2);
    if (pack_.empty()) pack_ = pack_at(fixture_, tmp_->path(), 1);
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete tmp_;
  }
  void SetUp() override {
    if (pack_.empty()) GTEST_SKIP() << "no HF fixtures";
  }
  static inline test::TempDir* tmp_ = nullptr;
  static inline fs::path fixture_;
  static inline test::HfReference* ref_ = nullptr;
  static inline std::string pack_;
};

TEST_F(StepEnginePolicyTest, SharedPrefixIsComputedOnceAndGivesTheUncachedResult) {
  auto engine = open_paged(pack_, 64, DType::kBF16);
  // A 48-token shared prefix (3 blocks), then different tails.
  std::vector<int32_t> prefix = prompts_for(*ref_, 12)[11];  // 48 tokens
  ASSERT_EQ(prefix.size(), 48u);
  std::vector<TokenRequest> reqs;
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> p = prefix;
    for (int j = 0; j <= i; ++j) p.push_back(static_cast<int32_t>((7 * i + 3 * j + 1) % ref_->n_vocab));
    reqs.push_back(greedy_request(p, 6));
  }
  StepEngineOptions uncached;
  uncached.prefix_cache = false;
  StepEngineStats cold_stats, warm_stats;
  std::vector<Outcome> cold;
  for (const auto& r : reqs) cold.push_back(run_together(*engine, {r}, uncached, &cold_stats)[0]);

  StepEngine se(*engine, StepEngineOptions{});
  std::vector<Outcome> warm;
  for (const auto& r : reqs) {  // one after the other, so each later one finds the prefix cached
    const RequestId id = se.submit(r);
    se.run_to_completion();
    TokenResult res = se.take_result(id);
    warm.push_back({res.tokens, res.logits, res});
  }
  EXPECT_EQ(warm[0].result.n_cached_prompt, 0);
  EXPECT_EQ(warm[1].result.n_cached_prompt, 48);
  EXPECT_EQ(warm[2].result.n_cached_prompt, 48);
  warm_stats = se.stats();
  EXPECT_EQ(warm_stats.prefix_hit_tokens, 96);
  // Computed K/V rows: the uncached runs compute every prompt token; the cached ones skip 2 x 48.
  int64_t all_prompt = 0;
  for (const auto& r : reqs) all_prompt += static_cast<int64_t>(r.prompt.size());
  EXPECT_EQ(warm_stats.tokens_computed, all_prompt - 96 + 3 * 5);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(warm[i].tokens, cold[i].tokens) << i;
    EXPECT_LE(test::max_abs_diff(warm[i].logits.data(), cold[i].logits.data(), cold[i].logits.size()),
              kRelTol * ref_->logit_range)
        << i;
  }
}

TEST_F(StepEnginePolicyTest, EvictionUnderPressureKeepsResultsIdentical) {
  // Three prompts (48, 33 and 61 tokens, 6 new tokens each) twice in a row, one at a time: with
  // 5 blocks of 16 the pool cannot keep every prompt's blocks cached, so the second round finds
  // fewer of them than with a roomy pool, yet every output equals the first round's.
  const auto prompts = prompts_for(*ref_, 12);
  const int order[] = {11, 9, 6};
  auto rounds = [&](int64_t n_blocks, int64_t* hits) {
    auto engine = open_paged(pack_, n_blocks, DType::kBF16, 16, std::min<int64_t>(128, 16 * n_blocks));
    StepEngine se(*engine, StepEngineOptions{});
    std::vector<std::vector<int32_t>> out;
    for (int round = 0; round < 2; ++round) {
      for (int i : order) {
        const RequestId id = se.submit(greedy_request(prompts[static_cast<size_t>(i)], 6));
        se.run_to_completion();
        out.push_back(se.take_result(id).tokens);
      }
    }
    EXPECT_EQ(se.block_manager().n_used(), 0);
    se.block_manager().check_invariants();
    *hits = se.stats().prefix_hit_tokens;
    return out;
  };
  int64_t tight_hits = 0, roomy_hits = 0;
  const auto tight = rounds(5, &tight_hits);
  const auto roomy = rounds(64, &roomy_hits);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(tight[k + 3], tight[k]) << "prompt " << order[k] << " after evictions";
    EXPECT_EQ(tight[k], roomy[k]) << "prompt " << order[k];
  }
  EXPECT_LT(tight_hits, roomy_hits) << "the tight pool was meant to evict cached blocks";
  EXPECT_GT(tight_hits, 0);
}

TEST_F(StepEnginePolicyTest, PreemptionRecomputesAndChangesNoOutput) {
  const auto prompts = prompts_for(*ref_, 8);
  std::vector<TokenRequest> reqs;
  for (const auto& p : prompts) reqs.push_back(greedy_request(p, 24));
  auto roomy = open_paged(pack_, 128, DType::kF32);
  std::vector<Outcome> alone;
  for (const auto& r : reqs) alone.push_back(run_together(*roomy, {r})[0]);

  for (AdmissionMode mode : {AdmissionMode::kPreempt, AdmissionMode::kGuaranteed}) {
    // 12 blocks x 16 = 192 tokens: the 8 requests need 8 x ~1-6 blocks at once.
    auto tight = open_paged(pack_, 12, DType::kF32, 16, 192);
    StepEngineOptions so;
    so.admission = mode;
    StepEngineStats st;
    const std::vector<Outcome> got = run_together(*tight, reqs, so, &st);
    if (mode == AdmissionMode::kPreempt) {
      EXPECT_GT(st.n_preemptions, 0) << "the pool was meant to be too small";
    } else {
      EXPECT_EQ(st.n_preemptions, 0) << "guaranteed admission never preempts";
    }
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(got[i].tokens, alone[i].tokens) << "request " << i;
      EXPECT_LE(test::max_abs_diff(got[i].logits.data(), alone[i].logits.data(),
                                   alone[i].logits.size()),
                kRelTol * ref_->logit_range)
          << "request " << i;
    }
  }
}

TEST_F(StepEnginePolicyTest, SeededSamplingDoesNotDependOnTheBatch) {
  auto engine = open_paged(pack_, 128, DType::kBF16);
  const auto prompts = prompts_for(*ref_, 6);
  std::vector<TokenRequest> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    TokenRequest r = greedy_request(prompts[i], 10);
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 20;
    r.sampling.seed = 100 + i;
    reqs.push_back(r);
  }
  std::vector<Outcome> alone;
  for (const auto& r : reqs) alone.push_back(run_together(*engine, {r})[0]);
  const std::vector<Outcome> batched = run_together(*engine, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(batched[i].tokens, alone[i].tokens) << i;
}

TEST_F(StepEnginePolicyTest, RequestsThatCanNeverFitAreRefusedWithBothNumbers) {
  // At load: a context the pool cannot hold once is refused when asked for explicitly, and the
  // default context is clamped to the pool.
  try {
    open_paged(pack_, 4, DType::kBF16, 16, 256);
    ADD_FAILURE() << "a 256-token context on a 64-token pool was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kOom);
    EXPECT_NE(std::string(e.what()).find("64 tokens"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
  }
  auto engine = open_paged(pack_, 4, DType::kBF16, 16, 0);  // default context
  EXPECT_EQ(engine->n_ctx(), 64);
  StepEngine se(*engine, StepEngineOptions{});
  try {
    se.submit(greedy_request(std::vector<int32_t>(100, 1), 4));
    ADD_FAILURE() << "a prompt longer than the context was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kKvFull);
    EXPECT_NE(std::string(e.what()).find("100"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("64"), std::string::npos) << e.what();
  }
  EXPECT_THROW(se.submit(greedy_request({-1}, 4)), Error);
  // Nothing was disturbed: a fitting request still runs.
  const RequestId id = se.submit(greedy_request({1, 2, 3}, 4));
  se.run_to_completion();
  EXPECT_EQ(se.take_result(id).tokens.size(), 4u);
}

TEST_F(StepEnginePolicyTest, CancelFreesBlocksAndStopsOnlyThatRequest) {
  auto engine = open_paged(pack_, 64, DType::kBF16);
  StepEngine se(*engine, StepEngineOptions{});
  const auto prompts = prompts_for(*ref_, 3);
  const RequestId a = se.submit(greedy_request(prompts[1], 20));
  const RequestId b = se.submit(greedy_request(prompts[2], 20));
  se.step();
  se.step();
  se.cancel(a);
  se.run_to_completion();
  EXPECT_EQ(se.take_result(a).finish, FinishReason::kCancelled);
  const TokenResult rb = se.take_result(b);
  EXPECT_EQ(rb.finish, FinishReason::kMaxTokens);
  EXPECT_EQ(rb.tokens.size(), 20u);
  EXPECT_EQ(se.block_manager().n_used(), 0);
}

TEST_F(StepEnginePolicyTest, DeterministicModeIsBitIdenticalAloneBatchedChunkedAndPreempted) {
  const auto prompts = prompts_for(*ref_, 8);
  std::vector<TokenRequest> reqs;
  for (const auto& p : prompts) reqs.push_back(greedy_request(p, 16));
  // Reference: each request alone, prefill chunks of 64.
  auto base = open_paged(pack_, 128, DType::kBF16, 16, 256, 64, true);
  std::vector<Outcome> alone;
  for (const auto& r : reqs) alone.push_back(run_together(*base, {r})[0]);
  auto same_bits = [&](const std::vector<Outcome>& got, const char* what) {
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(got[i].tokens, alone[i].tokens) << what << " request " << i;
      ASSERT_EQ(got[i].logits.size(), alone[i].logits.size()) << what;
      EXPECT_EQ(0, std::memcmp(got[i].logits.data(), alone[i].logits.data(),
                               alone[i].logits.size() * sizeof(float)))
          << what << " request " << i << ": logits differ by up to "
          << test::max_abs_diff(got[i].logits.data(), alone[i].logits.data(),
                                alone[i].logits.size());
    }
  };
  same_bits(run_together(*base, reqs), "batched");
  auto chunked = open_paged(pack_, 128, DType::kBF16, 16, 256, 7, true);  // chunks of 7 tokens
  same_bits(run_together(*chunked, reqs), "chunked by 7");
  auto tight = open_paged(pack_, 12, DType::kBF16, 16, 192, 64, true);
  StepEngineStats st;
  same_bits(run_together(*tight, reqs, StepEngineOptions{}, &st), "preempted");
  EXPECT_GT(st.n_preemptions, 0);
}

TEST_F(StepEnginePolicyTest, PromptLogitsCoverEveryPositionInAnyChunkingAndNeedNoPrefixCache) {
  std::vector<int32_t> prompt = prompts_for(*ref_, 7).back();  // 61 tokens
  TokenRequest r = greedy_request(prompt, 3);
  r.prompt_logits = true;
  StepEngineOptions no_cache;
  no_cache.prefix_cache = false;
  auto whole = open_paged(pack_, 64, DType::kF32, 16, 256, 64);
  auto chunked = open_paged(pack_, 64, DType::kF32, 16, 256, 7);  // 9 chunks
  const Outcome a = run_together(*whole, {r}, no_cache)[0];
  const Outcome b = run_together(*chunked, {r}, no_cache)[0];
  const size_t V = static_cast<size_t>(ref_->n_vocab);
  ASSERT_EQ(a.result.prompt_logits.size(), prompt.size() * V);
  ASSERT_EQ(b.result.prompt_logits.size(), prompt.size() * V);
  EXPECT_LE(test::max_abs_diff(a.result.prompt_logits.data(), b.result.prompt_logits.data(),
                               a.result.prompt_logits.size()),
            kRelTol * ref_->logit_range);
  EXPECT_EQ(a.tokens, b.tokens);
  // The last prompt row is also the first sampled row: the same logits.
  EXPECT_EQ(0, std::memcmp(a.result.prompt_logits.data() + (prompt.size() - 1) * V,
                           a.logits.data(), V * sizeof(float)));
  StepEngine cached(*whole, StepEngineOptions{});
  try {
    cached.submit(r);
    ADD_FAILURE() << "prompt_logits with the prefix cache was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
    EXPECT_NE(std::string(e.what()).find("prefix cache"), std::string::npos) << e.what();
  }
}

// 64 requests with random prompt lengths arrive at random steps; some are cancelled at random.
// Every request that completes equals its solo run; every block is free at the end.
TEST_F(StepEnginePolicyTest, StressRandomArrivalsAndCancels) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(ref_->n_vocab - 1));
  std::uniform_int_distribution<int> len(1, 70), gen(1, 20), coin(0, 9);
  std::vector<TokenRequest> reqs;
  for (int i = 0; i < 64; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(len(rng)));
    for (auto& t : p) t = id(rng);
    if (i % 4 == 0 && !reqs.empty()) {  // some share a prefix with an earlier request
      const auto& other = reqs[static_cast<size_t>(i / 2)].prompt;
      std::copy(other.begin(), other.begin() + std::min(other.size(), p.size()), p.begin());
    }
    reqs.push_back(greedy_request(p, gen(rng)));
  }
  // Deterministic mode, so "equals its solo run" is exact whatever the batch.
  auto engine = open_paged(pack_, 24, DType::kBF16, 16, 128, 64, true);
  std::vector<std::vector<int32_t>> solo;
  for (const auto& r : reqs) solo.push_back(run_together(*engine, {r})[0].tokens);

  StepEngine se(*engine, StepEngineOptions{});
  std::vector<RequestId> ids(reqs.size(), 0);
  size_t next = 0;
  int guard = 0;
  while ((next < reqs.size() || se.has_work()) && ++guard < 100000) {
    for (int k = coin(rng) % 4; k > 0 && next < reqs.size(); --k) ids[next] = se.submit(reqs[next]), ++next;
    if (coin(rng) == 0 && next > 0) se.cancel(ids[static_cast<size_t>(rng() % next)]);
    se.step();
  }
  int completed = 0, cancelled = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const TokenResult r = se.take_result(ids[i]);
    if (r.finish == FinishReason::kCancelled) {
      ++cancelled;
      continue;
    }
    ++completed;
    EXPECT_EQ(r.tokens, solo[i]) << "request " << i;
  }
  EXPECT_GT(completed, 32);
  EXPECT_GT(cancelled, 0);
  EXPECT_EQ(se.block_manager().n_used(), 0);
  EXPECT_EQ(se.block_manager().n_free(), se.block_manager().n_blocks());
}

}  // namespace
}  // namespace shardlm
