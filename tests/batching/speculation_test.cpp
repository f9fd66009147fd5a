// Speculative decoding through the step engine, end to end on real models:
//   - greedy identity: with a draft model (a smaller HF fixture with the same vocabulary) and with
//     n-gram lookup, 8 requests batched give exactly the tokens and (deterministic mode) the
//     bit-identical logits of plain decoding, at target TP 1 and 2 (draft TP 1);
//   - a draft identical to the target has acceptance rate exactly 1 (greedy and sampling);
//   - rollback: after rejections, both models' KV for the sequence's positions equals a fresh
//     run's byte for byte and the target holds no block past its computed positions;
//   - exactness end to end: on a 16-token vocabulary, 200,000 seeded requests' first three tokens
//     follow the target's exact joint distribution (chi-square), and the same counts fail
//     against the draft's distribution (so the test can tell the two apart);
//   - a draft with another tokenizer or vocabulary is refused at construction.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "runtime/core/status.h"
#include "runtime/engine/step_engine.h"
#include "tests/batching/step_test_util.h"
#include "tests/engine/chi_square.h"
#include "tests/runtime/test_util.h"
#include "tests/runtime/tiny_checkpoint.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;

fs::path fixture(const std::string& name) {
  return fs::path(SHARDLM_FIXTURES_DIR) / "hf" / name;
}

struct PairParam {
  std::string target, draft;
};

// Target/draft pairs of HF fixtures sharing a vocabulary (the draft is the smaller model).
std::vector<PairParam> pairs() {
  return {{"qwen2_qkv_bias_tied_f32", "mistral_sliding_window6_f32"},
          {"llama_gqa_f32", "mistral_sliding_window6_f32"},
          {"qwen3_qknorm_headdim32_tied_bf16", "llama3_rope_scaling_f32"},
          {"qwen2_gqa_h256_bf16", "llama_mqa_headdim48_tied_bf16"}};
}

std::vector<std::vector<int32_t>> prompts(int64_t n_vocab, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(n_vocab - 1));
  const int lens[] = {1, 9, 17, 31, 5, 40, 12, 23};
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> p(static_cast<size_t>(lens[i % 8]));
    for (int32_t& t : p) t = id(rng);
    // A repeated stretch, so n-gram lookup finds matches.
    if (p.size() > 8) p.insert(p.end(), p.begin(), p.begin() + 6);
    out.push_back(p);
  }
  return out;
}

struct SpecRun {
  std::vector<TokenResult> results;
  StepEngineStats stats;
};

SpecRun run(Engine& engine, Engine* draft, const std::vector<TokenRequest>& requests,
            const SpeculationOptions& spec) {
  StepEngineOptions so;
  so.speculation = spec;
  StepEngine se(engine, so, draft);
  std::vector<RequestId> ids;
  for (const TokenRequest& r : requests) ids.push_back(se.submit(r));
  se.run_to_completion();
  SpecRun out;
  for (RequestId id : ids) out.results.push_back(se.take_result(id));
  out.stats = se.stats();
  EXPECT_EQ(se.block_manager().n_used(), 0) << "target blocks held after every request finished";
  if (se.draft()) {
    EXPECT_EQ(se.draft()->block_manager().n_used(), 0) << "draft blocks held after the end";
  }
  return out;
}

std::vector<TokenRequest> requests_for(const std::vector<std::vector<int32_t>>& ps, int64_t n_new,
                                       float temperature) {
  std::vector<TokenRequest> rs;
  for (size_t i = 0; i < ps.size(); ++i) {
    TokenRequest r;
    r.prompt = ps[i];
    r.sampling.temperature = temperature;
    r.sampling.seed = 100 + i;
    r.max_new_tokens = n_new;
    r.logits = true;
    rs.push_back(r);
  }
  return rs;
}

SpeculationOptions spec_options(SpeculationMode mode, int32_t k, bool adaptive = true) {
  SpeculationOptions o;
  o.mode = mode;
  o.k = k;
  o.adaptive = adaptive;
  return o;
}

class SpeculationPairTest : public ::testing::TestWithParam<PairParam> {};

TEST_P(SpeculationPairTest, GreedyOutputEqualsPlainDecoding) {
  const PairParam& pp = GetParam();
  if (!fs::exists(fixture(pp.target) / "config.json")) GTEST_SKIP() << "no HF fixtures";
  test::TempDir tmp("spec-" + pp.target);
  const std::string draft_pack = pack_at(fixture(pp.draft), tmp.path() / "draft", 1);
  ASSERT_FALSE(draft_pack.empty());
  const test::HfReference ref = test::load_hf_reference(fixture(pp.target));
  const auto ps = prompts(ref.n_vocab, 8, 3);
  const auto reqs = requests_for(ps, 24, 0);
  for (int tp : {1, 2}) {
    const std::string pack = pack_at(fixture(pp.target), tmp.path() / "target", tp);
    if (pack.empty()) continue;
    SCOPED_TRACE("target tp " + std::to_string(tp));
    auto engine = open_paged(pack, 128, DType::kF32, 16, 256, 64, /*deterministic=*/true);
    auto draft = open_paged(draft_pack, 128, DType::kF32, 16, 256, 64, /*deterministic=*/true);
    const SpecRun plain = run(*engine, nullptr, reqs, {});
    for (SpeculationMode mode : {SpeculationMode::kDraft, SpeculationMode::kNgram}) {
      SCOPED_TRACE(speculation_mode_name(mode));
      for (bool adaptive : {true, false}) {
        SpeculationOptions o = spec_options(mode, 4, adaptive);
        o.ngram_min = 1;  // random models rarely repeat bigrams; unigram matches are common
        const SpecRun spec = run(*engine, draft.get(), reqs, o);
        EXPECT_GT(spec.stats.spec_verifications, 0);
        EXPECT_GT(spec.stats.spec_proposed, 0);
        for (size_t i = 0; i < reqs.size(); ++i) {
          EXPECT_EQ(spec.results[i].tokens, plain.results[i].tokens) << "request " << i;
          EXPECT_EQ(spec.results[i].finish, plain.results[i].finish) << "request " << i;
          ASSERT_EQ(spec.results[i].logits.size(), plain.results[i].logits.size())
              << "request " << i;
          size_t first_diff = 0;
          while (first_diff < plain.results[i].logits.size() &&
                 spec.results[i].logits[first_diff] == plain.results[i].logits[first_diff]) {
            ++first_diff;
          }
          EXPECT_EQ(first_diff, plain.results[i].logits.size())
              << "request " << i << ": deterministic logits must be bit-identical; row "
              << first_diff / static_cast<size_t>(ref.n_vocab) << " differs";
        }
      }
    }
  }
}

TEST_P(SpeculationPairTest, RollbackLeavesBothCachesAsAFreshRun) {
  const PairParam& pp = GetParam();
  if (!fs::exists(fixture(pp.target) / "config.json")) GTEST_SKIP() << "no HF fixtures";
  test::TempDir tmp("spec-rb-" + pp.target);
  const std::string pack = pack_at(fixture(pp.target), tmp.path() / "target", 1);
  const std::string draft_pack = pack_at(fixture(pp.draft), tmp.path() / "draft", 1);
  const test::HfReference ref = test::load_hf_reference(fixture(pp.target));
  auto engine = open_paged(pack, 128, DType::kBF16, 16, 256, 64, true);
  auto draft = open_paged(draft_pack, 128, DType::kBF16, 16, 256, 64, true);
  // Sampling at a high temperature: broad p and q, so proposals are accepted and rejected.
  auto reqs = requests_for(prompts(ref.n_vocab, 4, 5), 60, 1.5f);
  StepEngineOptions so;
  so.speculation = spec_options(SpeculationMode::kDraft, 4, /*adaptive=*/false);
  so.speculation.draft_min_prob = 0;
  so.prefix_cache = false;
  StepEngine se(*engine, so, draft.get());
  std::vector<RequestId> ids;
  for (const TokenRequest& r : reqs) ids.push_back(se.submit(r));
  int checked = 0;
  for (int step = 0; step < 200 && se.has_work(); ++step) {
    se.step();
    const StepEngineStats st = se.stats();
    if (st.spec_accepted == 0 || st.spec_accepted == st.spec_proposed) continue;
    // Check the first live request once both kinds of outcome have happened (every 5 steps).
    if (step % 5 != 0) continue;
    for (RequestId id : ids) {
      const auto live = se.live(id);
      if (!live || live->n_computed < 20) continue;
      const int64_t n = live->n_computed;
      const std::vector<int32_t> context(live->tokens.begin(), live->tokens.begin() + n);
      const std::span<const int32_t> table = se.block_manager().block_table(id);
      EXPECT_EQ(static_cast<int64_t>(table.size()), (n + 15) / 16)
          << "the target holds blocks past its computed positions";
      const int64_t n_draft = se.draft()->n_computed(id);
      ASSERT_LE(n_draft, n) << "the draft holds KV for a token the target rejected";
      const std::span<const int32_t> dtable = se.draft()->block_manager().block_table(id);
      // Fresh runs of the same context on both models.
      for (int which = 0; which < 2; ++which) {
        const int64_t len = which == 0 ? n : n_draft;
        if (len == 0) continue;
        const std::string& dir = which == 0 ? pack : draft_pack;
        auto fresh = open_paged(dir, 128, DType::kBF16, 16, 256, 64, true);
        StepEngineOptions fo;
        fo.prefix_cache = false;
        StepEngine fe(*fresh, fo);
        TokenRequest fr;
        fr.prompt.assign(context.begin(), context.begin() + len);
        fr.sampling.temperature = 0;
        fr.max_new_tokens = 4;
        const RequestId fid = fe.submit(fr);
        while (!fe.live(fid) || fe.live(fid)->n_computed < len) fe.step();
        std::vector<int64_t> slots, fresh_slots;
        const std::span<const int32_t> ft = fe.block_manager().block_table(fid);
        for (int64_t p = 0; p < len; ++p) {
          slots.push_back(int64_t{(which == 0 ? table : dtable)[p / 16]} * 16 + p % 16);
          fresh_slots.push_back(int64_t{ft[p / 16]} * 16 + p % 16);
        }
        const Engine& mine = which == 0 ? *engine : *draft;
        EXPECT_TRUE(mine.read_kv_slots(0, slots) == fresh->read_kv_slots(0, fresh_slots))
            << (which == 0 ? "target" : "draft") << " KV differs from a fresh run of " << len
            << " tokens";
      }
      ++checked;
      break;
    }
    if (checked >= 3) break;
  }
  EXPECT_GE(checked, 1) << "no step had both accepted and rejected proposals";
}

TEST_P(SpeculationPairTest, ADraftIdenticalToTheTargetIsAlwaysAccepted) {
  const PairParam& pp = GetParam();
  if (!fs::exists(fixture(pp.target) / "config.json")) GTEST_SKIP() << "no HF fixtures";
  test::TempDir tmp("spec-id-" + pp.target);
  const std::string pack = pack_at(fixture(pp.target), tmp.path() / "target", 1);
  const test::HfReference ref = test::load_hf_reference(fixture(pp.target));
  auto engine = open_paged(pack, 128, DType::kF32, 16, 256, 64, true);
  auto same = open_paged(pack, 128, DType::kF32, 16, 256, 64, true);
  for (float temperature : {0.0f, 0.8f}) {
    SCOPED_TRACE("temperature " + std::to_string(temperature));
    SpeculationOptions o = spec_options(SpeculationMode::kDraft, 5);
    o.draft_min_prob = 0;
    const SpecRun r =
        run(*engine, same.get(), requests_for(prompts(ref.n_vocab, 4, 9), 30, temperature), o);
    EXPECT_GT(r.stats.spec_proposed, 20);
    EXPECT_EQ(r.stats.spec_accepted, r.stats.spec_proposed);
    EXPECT_EQ(r.stats.spec_acceptance_rate(), 1.0);
  }
}

// A draft that is rarely right: the step engine keeps what its first requests taught
// (speculation.h, SpecPrior), so requests after them spend far fewer draft proposals than the same
// requests do on fresh step engines, while greedy output stays plain decoding's.
TEST_P(SpeculationPairTest, LaterRequestsLearnFromEarlierOnesThatTheDraftIsPoor) {
  const PairParam& pp = GetParam();
  if (!fs::exists(fixture(pp.target) / "config.json")) GTEST_SKIP() << "no HF fixtures";
  test::TempDir tmp("spec-prior-" + pp.target);
  const std::string pack = pack_at(fixture(pp.target), tmp.path() / "target", 1);
  const std::string draft_pack = pack_at(fixture(pp.draft), tmp.path() / "draft", 1);
  ASSERT_FALSE(draft_pack.empty());
  const test::HfReference ref = test::load_hf_reference(fixture(pp.target));
  auto engine = open_paged(pack, 128, DType::kF32, 16, 256, 64, true);
  auto draft = open_paged(draft_pack, 128, DType::kF32, 16, 256, 64, true);
  SpeculationOptions o = spec_options(SpeculationMode::kDraft, 4);
  o.draft_min_prob = 0;
  const auto reqs = requests_for(prompts(ref.n_vocab, 8, 21), 60, 0.0f);
  const SpecRun plain = run(*engine, nullptr, reqs, spec_options(SpeculationMode::kOff, 4));
  // Fresh engines: every request starts from no experience.
  int64_t fresh_proposed = 0, fresh_accepted = 0;
  for (const TokenRequest& r : reqs) {
    const SpecRun one = run(*engine, draft.get(), {r}, o);
    fresh_proposed += one.stats.spec_proposed;
    fresh_accepted += one.stats.spec_accepted;
  }
  if (fresh_accepted * 4 > fresh_proposed) {
    GTEST_SKIP() << "this pair agrees too often (" << fresh_accepted << " of " << fresh_proposed
                 << ") to be a poor draft";
  }
  // One engine, one request after another.
  StepEngineOptions so;
  so.speculation = o;
  StepEngine se(*engine, so, draft.get());
  int64_t kept_proposed = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const RequestId id = se.submit(reqs[i]);
    se.run_to_completion();
    EXPECT_EQ(se.take_result(id).tokens, plain.results[i].tokens) << "request " << i;
  }
  kept_proposed = se.stats().spec_proposed;
  EXPECT_LT(kept_proposed * 2, fresh_proposed)
      << "one engine proposed " << kept_proposed << " tokens, fresh engines " << fresh_proposed;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SpeculationPairTest, ::testing::ValuesIn(pairs()),
                         [](const auto& info) { return info.param.target; });

// SpecGate in the step engine: in deterministic mode, or when asked, every step may speculate;
// otherwise the engine measures plain steps next to speculative ones (at least the gate's three
// after its first speculative ones) and reports the steps it kept plain.
TEST(Speculation, TheGateMeasuresPlainStepsUnlessDeterministic) {
  if (!fs::exists(fixture("qwen3_mqa_f32") / "config.json")) GTEST_SKIP() << "no HF fixtures";
  test::TempDir tmp("spec-gate");
  const std::string pack = pack_at(fixture("qwen3_mqa_f32"), tmp.path() / "target", 1);
  const test::HfReference ref = test::load_hf_reference(fixture("qwen3_mqa_f32"));
  const auto reqs = requests_for(prompts(ref.n_vocab, 1, 5), 60, 0.0f);
  SpeculationOptions o = spec_options(SpeculationMode::kDraft, 4);
  o.draft_min_prob = 0;
  for (const bool deterministic : {true, false}) {
    auto engine = open_paged(pack, 128, DType::kF32, 16, 256, 64, deterministic);
    auto same = open_paged(pack, 128, DType::kF32, 16, 256, 64, deterministic);
    for (const bool only_when_faster : {true, false}) {
      SCOPED_TRACE(std::string(deterministic ? "deterministic" : "default") +
                   (only_when_faster ? ", only when faster" : ", always"));
      o.only_when_faster = only_when_faster;
      const SpecRun r = run(*engine, same.get(), reqs, o);
      ASSERT_EQ(r.results.size(), 1u);
      EXPECT_EQ(r.results[0].tokens.size(), 60u);
      EXPECT_GT(r.stats.spec_verifications, 0);
      if (deterministic || !only_when_faster) {
        EXPECT_EQ(r.stats.spec_plain_steps_chosen, 0);
      } else {
        EXPECT_GE(r.stats.spec_plain_steps_chosen, 3);
        EXPECT_LT(r.stats.spec_plain_steps_chosen, r.stats.n_steps);
      }
    }
  }
}

TEST(Speculation, ADraftWithAnotherVocabularyIsRefused) {
  if (!fs::exists(fixture("qwen3_mqa_f32") / "config.json")) GTEST_SKIP() << "no HF fixtures";
  test::TempDir tmp("spec-vocab");
  const std::string target = pack_at(fixture("llama_gqa_f32"), tmp.path() / "t", 1);
  const std::string other = pack_at(fixture("qwen3_mqa_f32"), tmp.path() / "d", 1);
  auto engine = open_paged(target, 64, DType::kF32);
  auto draft = open_paged(other, 64, DType::kF32);
  StepEngineOptions so;
  so.speculation.mode = SpeculationMode::kDraft;
  try {
    StepEngine se(*engine, so, draft.get());
    FAIL() << "a draft with vocabulary 260 beside a target with 320 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("260"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("320"), std::string::npos) << e.what();
  }
  // Both engines stay usable: plain decoding still runs.
  EXPECT_EQ(run(*engine, nullptr, requests_for({{1, 2, 3}}, 4, 0), {}).results[0].tokens.size(),
            4u);
  so.speculation.mode = SpeculationMode::kDraft;
  EXPECT_THROW(StepEngine(*engine, so, nullptr), Error);
}

// Exact distribution end to end: tiny vocabulary, the joint law of the first three generated
// tokens (the first from the prefill, the next two from verification steps).
TEST(Speculation, SampledTokensFollowTheTargetDistributionExactly) {
  constexpr int64_t kVocab = 16;
  test::TempDir tmp("spec-chi2");
  test::TinyModelSpec ts = test::tiny_qwen3();
  ts.n_vocab = kVocab;
  ts.seed = 41;
  test::TinyModelSpec ds = test::tiny_llama();
  ds.n_vocab = kVocab;
  ds.n_layer = 1;
  ds.seed = 42;
  test::write_tiny_checkpoint(ts, (tmp.path() / "t-hf").string());
  test::write_tiny_checkpoint(ds, (tmp.path() / "d-hf").string());
  const std::string target = pack_at(tmp.path() / "t-hf", tmp.path() / "t", 1);
  const std::string draft_pack = pack_at(tmp.path() / "d-hf", tmp.path() / "d", 1);
  const std::vector<int32_t> prompt = {3, 1, 4};

  // Exact joints from prompt logits: for every (t1, t2), the rows after prompt, t1 and t2.
  const auto joint_of = [&](const std::string& pack) {
    auto e = open_paged(pack, 512, DType::kF32, 16, 64, 2048, false, MatmulActivations::kF32, 1);
    StepEngineOptions so;
    so.prefix_cache = false;
    so.max_seqs = 256;
    StepEngine se(*e, so);
    std::vector<RequestId> ids;
    for (int32_t a = 0; a < kVocab; ++a) {
      for (int32_t b = 0; b < kVocab; ++b) {
        TokenRequest r;
        r.prompt = prompt;
        r.prompt.push_back(a);
        r.prompt.push_back(b);
        r.prompt_logits = true;
        r.max_new_tokens = 1;
        r.sampling.temperature = 0;
        ids.push_back(se.submit(r));
      }
    }
    se.run_to_completion();
    const auto softmax_row = [&](const std::vector<float>& logits, size_t row) {
      std::vector<double> p(kVocab);
      double m = -1e30, s = 0;
      for (int64_t v = 0; v < kVocab; ++v) m = std::max(m, double(logits[row * kVocab + v]));
      for (int64_t v = 0; v < kVocab; ++v) s += p[v] = std::exp(logits[row * kVocab + v] - m);
      for (double& x : p) x /= s;
      return p;
    };
    std::vector<double> joint(kVocab * kVocab * kVocab);
    for (int32_t a = 0; a < kVocab; ++a) {
      for (int32_t b = 0; b < kVocab; ++b) {
        const TokenResult r = se.take_result(ids[a * kVocab + b]);
        const auto p1 = softmax_row(r.prompt_logits, 2), p2 = softmax_row(r.prompt_logits, 3),
                   p3 = softmax_row(r.prompt_logits, 4);
        for (int32_t c = 0; c < kVocab; ++c) {
          joint[(a * kVocab + b) * kVocab + c] = p1[a] * p2[b] * p3[c];
        }
      }
    }
    return joint;
  };
  const std::vector<double> p_joint = joint_of(target);
  const std::vector<double> q_joint = joint_of(draft_pack);

  // One thread each: the models are tiny, the cost is per step.
  auto engine =
      open_paged(target, 2048, DType::kF32, 16, 64, 2048, false, MatmulActivations::kF32, 1);
  auto draft =
      open_paged(draft_pack, 2048, DType::kF32, 16, 64, 2048, false, MatmulActivations::kF32, 1);
  StepEngineOptions so;
  so.max_seqs = 512;
  so.prefix_cache = false;
  so.speculation = spec_options(SpeculationMode::kDraft, 2, /*adaptive=*/false);
  so.speculation.draft_min_prob = 0;
  StepEngine se(*engine, so, draft.get());
  constexpr int kSamples = 200000;
  std::vector<int64_t> counts(p_joint.size(), 0);
  int submitted = 0, collected = 0;
  std::vector<RequestId> live;
  while (collected < kSamples) {
    while (submitted < kSamples && static_cast<int>(live.size()) < 1024) {
      TokenRequest r;
      r.prompt = prompt;
      r.sampling.temperature = 1.0f;
      r.sampling.seed = static_cast<uint64_t>(submitted++) * 7919 + 1;
      r.max_new_tokens = 3;
      live.push_back(se.submit(r));
    }
    for (RequestId id : se.step()) {
      const TokenResult r = se.take_result(id);
      ASSERT_EQ(r.tokens.size(), 3u);
      ++counts[(r.tokens[0] * kVocab + r.tokens[1]) * kVocab + r.tokens[2]];
      ++collected;
      live.erase(std::find(live.begin(), live.end(), id));
    }
  }
  const StepEngineStats st = se.stats();
  EXPECT_GT(st.spec_accepted, kSamples / 10) << "too few accepted proposals to test anything";
  EXPECT_GT(st.spec_proposed - st.spec_accepted, kSamples / 10) << "too few rejections";
  const double p_value = test::chi_square_p_value(p_joint, counts);
  EXPECT_GT(p_value, 1e-3) << "the speculative samples do not follow the target";
  // The same counts against the draft's law: the test must be able to tell the two apart.
  EXPECT_LT(test::chi_square_p_value(q_joint, counts), 1e-3)
      << "the target and draft distributions are too close for this test to mean anything";
}

}  // namespace
}  // namespace shardlm
