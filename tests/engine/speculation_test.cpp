// The pieces of speculative decoding that need no model: the verifier (greedy and exact rejection
// sampling, checked by chi-square tests on adversarial distribution pairs, and shown to catch a
// deliberately broken acceptance rule), the n-gram proposer, the adaptive-k controller and the
// gate that keeps speculation to where it measured faster.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/engine/ngram_proposer.h"
#include "runtime/engine/rejection_sampler.h"
#include "runtime/engine/speculation.h"
#include "tests/engine/chi_square.h"

namespace shardlm {
namespace {

using Dist = std::vector<float>;

Dist normalized(std::vector<double> w) {
  double s = 0;
  for (double x : w) s += x;
  Dist d(w.size());
  for (size_t i = 0; i < w.size(); ++i) d[i] = static_cast<float>(w[i] / s);
  return d;
}

struct Pair {
  std::string name;
  Dist p0, p1;                       // target at the first and second proposal
  Dist q0, q1;                       // draft; empty: deterministic proposals (n-gram style)
  int32_t fixed0 = -1, fixed1 = -1;  // the deterministic proposals
};

constexpr int kV = 24;

std::vector<Pair> adversarial_pairs() {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  const auto random_dist = [&](double sharp) {
    std::vector<double> w(kV);
    for (double& x : w) x = std::pow(u(rng), sharp);
    return normalized(w);
  };
  std::vector<Pair> out;
  {  // disjoint supports: every proposal is rejected
    std::vector<double> a(kV, 0), b(kV, 0);
    for (int i = 0; i < kV / 2; ++i) a[i] = 1 + i;
    for (int i = kV / 2; i < kV; ++i) b[i] = 1 + (i % 5);
    out.push_back({"disjoint", normalized(a), random_dist(3), normalized(b), random_dist(1)});
  }
  {  // one-hot q: the draft is sure and often wrong
    std::vector<double> oh(kV, 0);
    oh[3] = 1;
    out.push_back({"one_hot_q", random_dist(2), random_dist(2), normalized(oh), normalized(oh)});
  }
  {  // q = p: everything is accepted
    const Dist p = random_dist(4), p1 = random_dist(1);
    out.push_back({"q_equals_p", p, p1, p, p1});
  }
  {  // near-uniform both
    std::vector<double> a(kV), b(kV);
    for (int i = 0; i < kV; ++i) {
      a[i] = 1 + 0.05 * u(rng);
      b[i] = 1 + 0.05 * u(rng);
    }
    out.push_back({"near_uniform", normalized(a), random_dist(0.5), normalized(b), normalized(a)});
  }
  {  // peaked p, broad q
    std::vector<double> a(kV, 1e-3);
    a[7] = 5;
    a[8] = 2;
    out.push_back(
        {"peaked_p_broad_q", normalized(a), normalized(a), random_dist(1), random_dist(1)});
  }
  {  // deterministic proposals (n-gram): one likely, one unlikely under p
    Pair pr{"deterministic", random_dist(2), random_dist(2), {}, {}};
    pr.fixed0 = static_cast<int32_t>(std::max_element(pr.p0.begin(), pr.p0.end()) - pr.p0.begin());
    pr.fixed1 = static_cast<int32_t>(std::min_element(pr.p1.begin(), pr.p1.end()) - pr.p1.begin());
    out.push_back(pr);
  }
  return out;
}

int32_t draw(const Dist& d, std::mt19937_64& rng) {
  return draw_from_weights(d, static_cast<double>(rng() >> 11) * 0x1.0p-53);
}

using Verifier = SpecVerdict (*)(std::span<const int32_t>, std::span<const float>, int64_t,
                                 std::span<const float>, int64_t, const std::function<double()>&);

// The broken rules the tests must catch.
SpecVerdict always_accept(std::span<const int32_t> props, std::span<const float> p, int64_t nv,
                          std::span<const float>, int64_t, const std::function<double()>& u) {
  SpecVerdict v;
  v.n_accepted = static_cast<int32_t>(props.size());
  v.next = draw_from_weights(p.subspan(props.size() * static_cast<size_t>(nv)), u());
  return v;
}

SpecVerdict resample_from_p(std::span<const int32_t> props, std::span<const float> p, int64_t nv,
                            std::span<const float> q, int64_t nq,
                            const std::function<double()>& u) {
  SpecVerdict v;
  for (size_t i = 0; i < props.size(); ++i) {
    const float px = p[i * nv + props[i]];
    const float qx = q.empty() ? 1.0f : q[i * nq + props[i]];
    if (u() * qx < px) {
      ++v.n_accepted;
      continue;
    }
    v.next = draw_from_weights(p.subspan(i * nv, nv), u());  // wrong: should be max(0, p - q)
    return v;
  }
  v.next = draw_from_weights(p.subspan(props.size() * nv), u());
  return v;
}

// Samples the first emitted token (must follow p0) and, when the first proposal was accepted,
// the second (must follow p1). Returns both chi-square p-values.
std::pair<double, double> run_pair(const Pair& pr, Verifier verify, int n_samples) {
  std::mt19937_64 rng(2024);
  const auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  std::vector<int64_t> first(kV, 0), second(kV, 0);
  Dist p(pr.p0);
  p.insert(p.end(), pr.p1.begin(), pr.p1.end());
  p.insert(p.end(), pr.p1.begin(), pr.p1.end());  // bonus row: p1 again
  Dist q;
  if (!pr.q0.empty()) {
    q = pr.q0;
    q.insert(q.end(), pr.q1.begin(), pr.q1.end());
  }
  for (int s = 0; s < n_samples; ++s) {
    const int32_t x0 = pr.q0.empty() ? pr.fixed0 : draw(pr.q0, rng);
    const int32_t x1 = pr.q1.empty() ? pr.fixed1 : draw(pr.q1, rng);
    const std::vector<int32_t> props = {x0, x1};
    const SpecVerdict v = verify(props, p, kV, q, kV, uniform);
    const std::vector<int32_t> emitted = [&] {
      std::vector<int32_t> e(props.begin(), props.begin() + v.n_accepted);
      e.push_back(v.next);
      return e;
    }();
    ++first[emitted[0]];
    if (v.n_accepted >= 1) ++second[emitted[1]];
  }
  const std::vector<double> p0(pr.p0.begin(), pr.p0.end()), p1(pr.p1.begin(), pr.p1.end());
  return {test::chi_square_p_value(p0, first), test::chi_square_p_value(p1, second)};
}

TEST(ChiSquare, KnownQuantiles) {
  // chi2(10) upper 5% point 18.307; chi2(1) upper 0.1% point 10.828; chi2(100) 5%: 124.342.
  EXPECT_NEAR(test::gamma_q(5.0, 18.307 / 2), 0.05, 1e-4);
  EXPECT_NEAR(test::gamma_q(0.5, 10.828 / 2), 0.001, 1e-5);
  EXPECT_NEAR(test::gamma_q(50.0, 124.342 / 2), 0.05, 1e-4);
}

TEST(RejectionSampler, GreedyKeepsTheMatchingPrefix) {
  const std::vector<int32_t> props = {5, 7, 9};
  EXPECT_EQ(verify_greedy(props, std::vector<int32_t>{5, 7, 9, 4}).n_accepted, 3);
  EXPECT_EQ(verify_greedy(props, std::vector<int32_t>{5, 7, 9, 4}).next, 4);
  const SpecVerdict v = verify_greedy(props, std::vector<int32_t>{5, 8, 9, 4});
  EXPECT_EQ(v.n_accepted, 1);
  EXPECT_EQ(v.next, 8);
  EXPECT_EQ(verify_greedy(props, std::vector<int32_t>{1, 7, 9, 4}).next, 1);
  EXPECT_THROW(verify_greedy(props, std::vector<int32_t>{5, 7, 9}), Error);
}

TEST(RejectionSampler, EmittedTokensFollowTheTargetExactly) {
  constexpr int kSamples = 200000;
  for (const Pair& pr : adversarial_pairs()) {
    SCOPED_TRACE(pr.name);
    const auto [first, second] = run_pair(pr, &verify_sampled, kSamples);
    EXPECT_GT(first, 1e-3) << "first emitted token does not follow p0";
    if (pr.name != "disjoint") {  // disjoint: the first proposal is never accepted
      EXPECT_GT(second, 1e-3) << "second emitted token does not follow p1";
    }
  }
}

TEST(RejectionSampler, TheTestCatchesBrokenAcceptanceRules) {
  constexpr int kSamples = 200000;
  int caught_always = 0, caught_resample = 0;
  for (const Pair& pr : adversarial_pairs()) {
    if (pr.name == "q_equals_p") continue;  // every rule is right when q = p
    SCOPED_TRACE(pr.name);
    const double a = run_pair(pr, &always_accept, kSamples).first;
    EXPECT_LT(a, 1e-3) << "always-accept passed the chi-square test";
    caught_always += a < 1e-3;
    if (pr.name == "disjoint") continue;  // resampling from p is right when supports are disjoint
    const double r = run_pair(pr, &resample_from_p, kSamples).first;
    EXPECT_LT(r, 1e-3) << "resampling from p instead of max(0, p - q) passed";
    caught_resample += r < 1e-3;
  }
  EXPECT_EQ(caught_always, 5);
  EXPECT_EQ(caught_resample, 4);
}

TEST(RejectionSampler, DisjointSupportsRejectEverythingAndEqualDistributionsAcceptEverything) {
  std::mt19937_64 rng(5);
  const auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  const Dist p = normalized({1, 2, 3, 0, 0, 0});
  const Dist q = normalized({0, 0, 0, 1, 1, 1});
  Dist pp = p;
  pp.insert(pp.end(), p.begin(), p.end());
  for (int i = 0; i < 1000; ++i) {
    const int32_t x = draw(q, rng);
    const SpecVerdict v = verify_sampled(std::vector<int32_t>{x}, pp, 6, q, 6, uniform);
    ASSERT_EQ(v.n_accepted, 0);
    ASSERT_LT(v.next, 3);
  }
  Dist qq = p;
  for (int i = 0; i < 1000; ++i) {
    const int32_t x = draw(p, rng);
    ASSERT_EQ(verify_sampled(std::vector<int32_t>{x}, pp, 6, qq, 6, uniform).n_accepted, 1);
  }
}

TEST(RejectionSampler, DraftVocabularySmallerThanTarget) {
  // Ids past the draft's vocabulary have q = 0: the residual keeps all of their mass.
  std::mt19937_64 rng(9);
  const auto uniform = [&] { return static_cast<double>(rng() >> 11) * 0x1.0p-53; };
  const Dist p = normalized({1, 1, 1, 1, 4, 4});  // target vocabulary 6
  const Dist q = normalized({1, 1, 1, 1});        // draft vocabulary 4
  Dist pp = p;
  pp.insert(pp.end(), p.begin(), p.end());
  std::vector<int64_t> counts(6, 0);
  for (int i = 0; i < 100000; ++i) {
    const int32_t x = draw(q, rng);
    const SpecVerdict v = verify_sampled(std::vector<int32_t>{x}, pp, 6, q, 4, uniform);
    ++counts[v.n_accepted ? x : v.next];
  }
  EXPECT_GT(test::chi_square_p_value({1, 1, 1, 1, 4, 4}, counts), 1e-3);
}

TEST(RejectionSampler, BadShapesAreRefused) {
  const auto u = [] { return 0.5; };
  EXPECT_THROW(verify_sampled(std::vector<int32_t>{1}, Dist(5, 0.2f), 5, {}, 5, u), Error);
  EXPECT_THROW(verify_sampled(std::vector<int32_t>{1}, Dist(10, 0.2f), 5, Dist(3), 5, u), Error);
}

TEST(NgramProposer, ProposesWhatFollowedTheLongestEarlierMatch) {
  //                         0  1  2  3  4  5  6  7  8  9 10
  const std::vector<int32_t> t = {1, 2, 3, 4, 5, 9, 2, 3, 7, 1, 2, 3};
  // suffix [1 2 3] occurred at 0: proposes 4 5 9
  EXPECT_EQ(propose_ngram(t, 2, 3, 3), (std::vector<int32_t>{4, 5, 9}));
  // with max_n 2 the most recent [2 3] (at 6) wins: 7 1 2
  EXPECT_EQ(propose_ngram(t, 2, 2, 3), (std::vector<int32_t>{7, 1, 2}));
  // k caps; the continuation stops at the end of the context
  EXPECT_EQ(propose_ngram(t, 2, 2, 1), (std::vector<int32_t>{7}));
  EXPECT_EQ(propose_ngram(std::vector<int32_t>{5, 6, 5, 6}, 2, 2, 8), (std::vector<int32_t>{5, 6}));
  EXPECT_TRUE(propose_ngram(std::vector<int32_t>{1, 2, 3, 4}, 1, 3, 4).empty());
  EXPECT_TRUE(propose_ngram(std::vector<int32_t>{7}, 1, 3, 4).empty());
  EXPECT_TRUE(propose_ngram(t, 2, 3, 0).empty());
}

TEST(SpecController, ShrinksPausesAndProbesAgain) {
  SpeculationOptions o;
  o.k = 6;
  SpecController c(o);
  for (int i = 0; i < 20; ++i) c.update(6, 6);
  EXPECT_EQ(c.next_k(), 6);
  for (int i = 0; i < 3; ++i) c.update(4, 1);
  const int32_t k = c.next_k();
  EXPECT_GE(k, 1);
  EXPECT_LT(k, 6);
  for (int i = 0; i < 10; ++i) c.update(1, 0);
  int paused = 0;
  while (c.next_k() == 0) ++paused;
  EXPECT_GE(paused, 10) << "a proposer that is never right must pause";
  EXPECT_EQ(c.next_k(), 1) << "the probe after a pause proposes one token";
  c.update(1, 0);  // the probe fails: the next pause is twice as long
  int paused_again = 0;
  while (c.next_k() == 0) ++paused_again;
  EXPECT_EQ(paused_again, 2 * (paused + 1) - 1);
  c.update(1, 1);  // a probe that passes resumes speculation
  EXPECT_GE(c.next_k(), 1);
  o.adaptive = false;
  SpecController fixed(o);
  fixed.update(6, 0);
  EXPECT_EQ(fixed.next_k(), 6);
}

TEST(SpecController, NgramProposalsAreNotShrunkButStillPause) {
  SpeculationOptions o;
  o.mode = SpeculationMode::kNgram;
  o.k = default_speculation_k(o.mode);
  EXPECT_EQ(o.k, 8);
  EXPECT_EQ(default_speculation_k(SpeculationMode::kDraft), 4);
  SpecController c(o);
  EXPECT_EQ(c.next_k(), 8) << "free proposals: the most tokens from the start";
  // 3 of 8 pass: a draft would drop to about one token (0.375 / 0.625 -> 1); n-gram keeps 8.
  for (int i = 0; i < 20; ++i) c.update(8, 3);
  EXPECT_NEAR(c.acceptance_average(), 0.375, 0.01);
  EXPECT_EQ(c.next_k(), 8);
  SpeculationOptions d = o;
  d.mode = SpeculationMode::kDraft;
  SpecController draft(d);
  for (int i = 0; i < 20; ++i) draft.update(8, 3);
  EXPECT_EQ(draft.next_k(), 1);
  // Almost nothing passes: n-gram pauses and probes with one token like a draft.
  for (int i = 0; i < 10; ++i) c.update(8, 0);
  int paused = 0;
  int32_t probe = 0;
  while ((probe = c.next_k()) == 0) ++paused;
  EXPECT_GE(paused, 10);
  EXPECT_EQ(probe, 1) << "the probe after a pause proposes one token";
  c.update(1, 1);
  EXPECT_EQ(c.next_k(), 8) << "a probe that passes: full proposals again";
}

TEST(SpecController, NewSequencesStartFromWhatTheEngineLearned) {
  SpeculationOptions o;
  o.k = 6;
  SpecPrior prior;
  SpecController first(o, &prior);
  EXPECT_EQ(first.next_k(), 2) << "no experience yet: the default estimate";
  // A proposer that is never right: the first sequence finds out, pauses and probes in vain.
  int asked = 0;
  for (int step = 0; step < 200; ++step) {
    const int32_t k = first.next_k();
    if (k > 0) {
      ++asked;
      first.update(k, 0);
    }
  }
  EXPECT_LT(prior.average(), 0.2);
  ASSERT_GT(prior.pause(), 16) << "the failed probes' pause is kept for the next sequences";
  EXPECT_LT(asked, 12);
  // The next sequence does not try it again until that pause has passed, then probes once.
  SpecController second(o, &prior);
  const int32_t pause = prior.pause();
  for (int step = 1; step < pause; ++step) ASSERT_EQ(second.next_k(), 0) << "step " << step;
  EXPECT_EQ(second.next_k(), 1);
  second.update(1, 0);
  EXPECT_GT(prior.pause(), pause) << "its failed probe doubles the pause for the ones after it";
  // A probe that passes ends the pause for later sequences too.
  SpecController third(o, &prior);
  while (third.next_k() == 0) {
  }
  third.update(1, 1);
  EXPECT_EQ(prior.pause(), 0);
  SpecController fourth(o, &prior);
  EXPECT_GE(fourth.next_k(), 1);
  // A proposer that is always right: new sequences start at the most tokens.
  SpecPrior good;
  SpecController warm(o, &good);
  for (int i = 0; i < 20; ++i) warm.update(warm.next_k(), warm.next_k());
  SpecController fresh(o, &good);
  EXPECT_EQ(fresh.next_k(), 6);
  // Without adaptation the prior changes nothing.
  o.adaptive = false;
  SpecController fixed(o, &prior);
  EXPECT_EQ(fixed.next_k(), 6);
}

// SpecGate on simulated steps: each step takes `plain_s` seconds to emit one token per sequence
// plainly, or `spec_s` to emit `spec_tokens` per sequence speculatively. Returns how many of
// `n` steps of `batch` sequences speculated.
int simulate_gate(SpecGate& g, int64_t batch, int n, double plain_s, double spec_s,
                  double spec_tokens) {
  int speculated = 0;
  for (int i = 0; i < n; ++i) {
    const bool spec = g.allow(batch);
    speculated += spec;
    const double tokens = spec ? spec_tokens * double(batch) : double(batch);
    g.record(batch, /*decode_only=*/true, spec, static_cast<int64_t>(tokens),
             spec ? spec_s : plain_s);
  }
  return speculated;
}

TEST(SpecGate, SpeculationThatMeasuresSlowerRunsOnlyAsRareProbes) {
  // 3 tokens per 1.2 ms against 1 token per 0.3 ms: speculating is 0.75x.
  SpecGate g(true);
  const int spec = simulate_gate(g, 1, 2000, 0.3e-3, 1.2e-3, 3.0);
  EXPECT_GT(spec, 3) << "it must still measure speculation now and then";
  EXPECT_LT(spec, 2000 / 20) << "speculated in " << spec << " of 2000 steps";
  EXPECT_EQ(g.plain_chosen(), 2000 - spec);
  EXPECT_NEAR(g.rate(1, false), 1 / 0.3e-3, 1);
  EXPECT_NEAR(g.rate(1, true), 3 / 1.2e-3, 1);
  // The probes' wait has grown: the last 600 steps hold at most two runs of 5.
  EXPECT_LE(simulate_gate(g, 1, 600, 0.3e-3, 1.2e-3, 3.0), 10);
}

TEST(SpecGate, SpeculationThatMeasuresFasterRunsWithRarePlainChecks) {
  SpecGate g(true);  // 3 tokens per 0.5 ms against 1 per 0.3 ms: 1.8x
  const int spec = simulate_gate(g, 1, 2000, 0.3e-3, 0.5e-3, 3.0);
  EXPECT_GT(spec, 2000 * 85 / 100);
  EXPECT_LT(spec, 2000) << "plain decoding must be measured again now and then";
}

TEST(SpecGate, PlainChecksGrowRareWhileSpeculationWinsClearly) {
  // 1.8x: the plain runs' wait doubles from 32 to 256 (runs at ~32, 100, 232, 500, 760, ...).
  SpecGate clear(true);
  const int plain_clear = 2000 - simulate_gate(clear, 1, 2000, 0.3e-3, 0.5e-3, 3.0);
  EXPECT_LT(plain_clear, 60) << "plain in " << plain_clear << " of 2000 steps";
  EXPECT_GT(plain_clear, 20) << "plain decoding must still be measured";
  // 1.1x (3 tokens per 0.82 ms against 1 per 0.3 ms): a narrow win keeps the checks every 32.
  SpecGate narrow(true);
  const int plain_narrow = 2000 - simulate_gate(narrow, 1, 2000, 0.3e-3, 0.82e-3, 3.0);
  EXPECT_GT(plain_narrow, 180) << "plain in " << plain_narrow << " of 2000 steps";
  // A clear win that stops paying is dropped within a few steps (as the average falls), not
  // after the long wait: speculative steps are measured all along; then only probes run.
  EXPECT_LT(simulate_gate(clear, 1, 100, 0.3e-3, 1.2e-3, 3.0), 30);
}

TEST(SpecGate, FollowsAChangeInWhichIsFaster) {
  SpecGate g(true);
  simulate_gate(g, 1, 1500, 0.3e-3, 1.2e-3, 3.0);  // slower: probes back off to long waits
  // Now speculation pays (e.g. the draft got cheaper): within one wait it is found again.
  simulate_gate(g, 1, 600, 0.3e-3, 0.6e-3, 3.0);
  EXPECT_GT(simulate_gate(g, 1, 300, 0.3e-3, 0.6e-3, 3.0), 300 * 85 / 100);
  // And back: slower again, it is dropped after the next plain check.
  simulate_gate(g, 1, 100, 0.3e-3, 1.2e-3, 3.0);
  EXPECT_LT(simulate_gate(g, 1, 100, 0.3e-3, 1.2e-3, 3.0), 15);
}

TEST(SpecGate, BatchSizesAreJudgedApart) {
  // One sequence: speculation pays; 16 sequences: a 16 x 4-token step costs too much.
  SpecGate g(true);
  int spec1 = 0, spec16 = 0;
  for (int i = 0; i < 1000; ++i) {
    spec1 += simulate_gate(g, 1, 1, 0.3e-3, 0.5e-3, 3.0);
    spec16 += simulate_gate(g, 16, 1, 1.0e-3, 5.0e-3, 3.0);
  }
  EXPECT_GT(spec1, 850);
  EXPECT_LT(spec16, 100);
  EXPECT_GT(g.rate(16, false), g.rate(16, true));
  EXPECT_EQ(g.rate(2, false), 0) << "batch 2 is a class of its own, never measured";
}

TEST(SpecGate, StepsItCannotCompareAreNotMeasured) {
  SpecGate g(true);
  g.record(1, true, false, 1, 1e-3);  // plain: 1000 tok/s
  g.record(1, true, true, 3, 1e-1);   // first speculative step after plain (draft catching up)
  EXPECT_EQ(g.rate(1, true), 0);
  g.record(1, true, true, 3, 1e-3);
  EXPECT_NEAR(g.rate(1, true), 3000, 1e-6);
  g.record(1, false, false, 64, 1e-3);  // a prompt chunk in the step
  EXPECT_NEAR(g.rate(1, false), 1000, 1e-6);
  SpecGate off(false);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(off.allow(1));
    off.record(1, true, i % 2 == 0, 1, 1.0);
  }
  EXPECT_EQ(off.plain_chosen(), 0);
}

TEST(SpeculationOptions, BadValuesAreRefused) {
  SpeculationOptions o;
  validate_speculation_options(o);
  o.k = 0;
  EXPECT_THROW(validate_speculation_options(o), Error);
  o = {};
  o.ngram_max = 1;
  EXPECT_THROW(validate_speculation_options(o), Error);
  o = {};
  o.draft_min_prob = 1;
  EXPECT_THROW(validate_speculation_options(o), Error);
}

}  // namespace
}  // namespace shardlm
