// Sampler chain tests on known distributions: top-k / top-p / min-p masks, the penalties'
// arithmetic and effect, greedy ties, seeded reproducibility, the chain's empirical frequencies,
// parameter validation, and generation defaults read from generation_config.json.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "runtime/core/status.h"
#include "runtime/engine/model_text.h"
#include "runtime/engine/sampler.h"

namespace shardlm {
namespace {

std::vector<TokenScore> probs(std::initializer_list<float> p) {
  std::vector<TokenScore> c;
  int32_t id = 0;
  for (float x : p) c.push_back({id++, x});
  return c;
}

std::set<int32_t> ids_of(const std::vector<TokenScore>& c) {
  std::set<int32_t> s;
  for (const auto& t : c) s.insert(t.id);
  return s;
}

// Logits whose softmax is `p` (temperature 1).
std::vector<float> logits_of(std::initializer_list<float> p) {
  std::vector<float> l;
  for (float x : p) l.push_back(std::log(x));
  return l;
}

std::map<int32_t, double> frequencies(Sampler& s, const std::vector<float>& logits, int n) {
  std::map<int32_t, double> f;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = logits;
    f[s.sample(l, {})] += 1.0 / n;
  }
  return f;
}

TEST(SamplerMasks, TopKKeepsTheKHighestAndTiesWithTheKth) {
  auto c = probs({1, 5, 3, 5, 2});
  keep_top_k(c, 2);
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{1, 3}));
  c = probs({5, 4, 4, 1});
  keep_top_k(c, 2);  // the 2nd value (4) is tied: both 4s survive, as in transformers
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{0, 1, 2}));
  c = probs({0.1f, 0.9f, 0.5f});
  keep_top_k(c, 0);  // off: all, sorted descending
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 2);
  EXPECT_EQ(c[2].id, 0);
}

TEST(SamplerMasks, TopPKeepsTheShortestPrefixReachingTheMass) {
  const auto base = probs({0.5f, 0.3f, 0.15f, 0.05f});
  auto c = base;
  keep_top_p(c, 0.75f);
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{0, 1}));
  c = base;
  keep_top_p(c, 0.85f);
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{0, 1, 2}));
  c = base;
  keep_top_p(c, 0.4f);  // the first token alone already has the mass
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{0}));
  c = base;
  keep_top_p(c, 1.0f);  // off
  EXPECT_EQ(c.size(), 4u);
}

TEST(SamplerMasks, MinPKeepsTokensAboveAFractionOfTheTop) {
  const auto base = probs({0.5f, 0.3f, 0.15f, 0.05f});
  auto c = base;
  keep_min_p(c, 0.25f);  // threshold 0.125
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{0, 1, 2}));
  c = base;
  keep_min_p(c, 0.7f);  // threshold 0.35
  EXPECT_EQ(ids_of(c), (std::set<int32_t>{0}));
  c = base;
  keep_min_p(c, 0.0f);  // off
  EXPECT_EQ(c.size(), 4u);
}

TEST(SamplerMasks, SoftmaxSumsToOneAndKeepsOrder) {
  std::vector<TokenScore> c = {{0, 2.0f}, {1, -1.0f}, {2, 0.5f}};
  softmax_in_place(c);
  EXPECT_NEAR(c[0].score + c[1].score + c[2].score, 1.0f, 1e-6f);
  EXPECT_GT(c[0].score, c[2].score);
  EXPECT_GT(c[2].score, c[1].score);
  EXPECT_NEAR(c[0].score / c[2].score, std::exp(1.5f), 1e-4f);
}

TEST(SamplerPenalties, RepetitionPresenceFrequencyArithmetic) {
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 3.0f};
  const std::vector<int32_t> hist = {0, 1, 1};
  apply_penalties(l, hist, 2.0f, 0.0f, 0.0f);
  EXPECT_FLOAT_EQ(l[0], 1.0f);   // positive: divided
  EXPECT_FLOAT_EQ(l[1], -4.0f);  // negative: multiplied (once, not per occurrence)
  EXPECT_FLOAT_EQ(l[2], 1.0f);   // not in the history
  EXPECT_FLOAT_EQ(l[3], 3.0f);

  std::vector<float> m = {1.0f, 1.0f, 1.0f};
  apply_penalties(m, std::vector<int32_t>{0, 0, 2}, 1.0f, 0.5f, 0.25f);
  EXPECT_FLOAT_EQ(m[0], 1.0f - 0.5f - 2 * 0.25f);
  EXPECT_FLOAT_EQ(m[1], 1.0f);
  EXPECT_FLOAT_EQ(m[2], 1.0f - 0.5f - 0.25f);
}

TEST(SamplerPenalties, RepetitionPenaltyChangesTheGreedyChoice) {
  SamplerParams p;
  p.temperature = 0;
  Sampler plain(p);
  std::vector<float> l = {3.0f, 2.5f, -1.0f};
  EXPECT_EQ(plain.sample(l, std::vector<int32_t>{0}), 0);
  p.repetition_penalty = 1.5f;  // 3 / 1.5 = 2 < 2.5
  Sampler penalized(p);
  EXPECT_TRUE(penalized.needs_logits());
  l = {3.0f, 2.5f, -1.0f};
  EXPECT_EQ(penalized.sample(l, std::vector<int32_t>{0}), 1);
}

TEST(SamplerPenalties, PenaltyWindowLooksOnlyAtTheLastN) {
  SamplerParams p;
  p.temperature = 0;
  p.presence_penalty = 10.0f;
  p.penalty_last_n = 2;
  Sampler s(p);
  std::vector<float> l = {5.0f, 4.0f, 0.0f};
  // History {0, 1, 1}: only {1, 1} are in the window, so 0 keeps its lead.
  EXPECT_EQ(s.sample(l, std::vector<int32_t>{0, 1, 1}), 0);
  p.penalty_last_n = -1;  // whole history: 0 and 1 are penalized, 2 wins
  Sampler all(p);
  l = {5.0f, 4.0f, 0.0f};
  EXPECT_EQ(all.sample(l, std::vector<int32_t>{0, 1, 1}), 2);
}

TEST(SamplerChain, GreedyIsTheArgmaxWithLowestIdOnTies) {
  SamplerParams p;
  p.temperature = 0;
  Sampler s(p);
  EXPECT_FALSE(s.needs_logits());
  std::vector<float> l = {0.1f, 0.7f, -3.0f, 0.7f};
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(SamplerChain, SameSeedSameTokensOtherSeedOtherTokens) {
  std::vector<float> flat(1000);
  for (size_t i = 0; i < flat.size(); ++i) flat[i] = std::sin(static_cast<float>(i)) * 0.1f;
  auto run = [&](uint64_t seed) {
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_p = 0.9f;
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> l = flat;
      out.push_back(s.sample(l, out));
    }
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(SamplerChain, TopKTopPMinPRestrictTheDrawAndKeepRelativeOdds) {
  const std::vector<float> l = logits_of({0.5f, 0.3f, 0.15f, 0.05f});
  const int n = 20000;
  {
    SamplerParams p;
    p.top_p = 0.75f;  // {0, 1}, renormalized: 0.625, 0.375
    p.seed = 1;
    Sampler s(p);
    auto f = frequencies(s, l, n);
    EXPECT_EQ(f.size(), 2u);
    EXPECT_NEAR(f[0], 0.625, 0.02);
    EXPECT_NEAR(f[1], 0.375, 0.02);
  }
  {
    SamplerParams p;
    p.top_k = 3;  // {0, 1, 2}: 0.5 / 0.95, ...
    p.seed = 2;
    Sampler s(p);
    auto f = frequencies(s, l, n);
    EXPECT_EQ(f.size(), 3u);
    EXPECT_NEAR(f[0], 0.5 / 0.95, 0.02);
    EXPECT_NEAR(f[2], 0.15 / 0.95, 0.02);
  }
  {
    SamplerParams p;
    p.min_p = 0.5f;  // threshold 0.25: {0, 1}
    p.seed = 3;
    Sampler s(p);
    auto f = frequencies(s, l, n);
    EXPECT_EQ(f.size(), 2u);
    EXPECT_NEAR(f[0], 0.625, 0.02);
  }
  {
    SamplerParams p;  // no filters: the softmax itself
    p.seed = 4;
    Sampler s(p);
    auto f = frequencies(s, l, n);
    EXPECT_NEAR(f[0], 0.5, 0.02);
    EXPECT_NEAR(f[3], 0.05, 0.01);
  }
  {
    SamplerParams p;  // temperature 0.5 squares the odds: 0.25 : 0.09 : 0.0225 : 0.0025
    p.temperature = 0.5f;
    p.seed = 5;
    Sampler s(p);
    auto f = frequencies(s, l, n);
    EXPECT_NEAR(f[0], 0.25 / 0.365, 0.02);
  }
}

TEST(SamplerChain, TopPOnALargeFlatVocabularyStillCoversTheMass) {
  // 150k nearly equal logits: the partial sort has to grow until it reaches the mass.
  std::vector<float> l(150000);
  for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<float>(i % 7) * 1e-3f;
  SamplerParams p;
  p.top_p = 0.5f;
  p.seed = 9;
  Sampler s(p);
  std::set<int32_t> seen;
  for (int i = 0; i < 40; ++i) {
    std::vector<float> x = l;
    seen.insert(s.sample(x, {}));
  }
  EXPECT_GT(seen.size(), 35u);  // many distinct ids: the kept set is large, not truncated
}

TEST(SamplerParamsValidation, NamesTheField) {
  auto message = [](SamplerParams p) {
    try {
      validate_sampler_params(p);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
      return std::string(e.what());
    }
    return std::string();
  };
  SamplerParams p;
  p.top_p = 0;
  EXPECT_NE(message(p).find("top_p"), std::string::npos);
  p = {};
  p.temperature = -1;
  EXPECT_NE(message(p).find("temperature"), std::string::npos);
  p = {};
  p.min_p = 2;
  EXPECT_NE(message(p).find("min_p"), std::string::npos);
  p = {};
  p.repetition_penalty = 0;
  EXPECT_NE(message(p).find("repetition_penalty"), std::string::npos);
  p = {};
  p.top_k = -3;
  EXPECT_NE(message(p).find("top_k"), std::string::npos);
  p = {};
  p.temperature = NAN;
  EXPECT_NE(message(p).find("temperature"), std::string::npos);
  EXPECT_EQ(message(SamplerParams{}), "");
}

TEST(GenerationDefaults, ReadAsTransformersDoes) {
  SamplerParams q = generation_defaults_from_json(
      R"({"do_sample": true, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
          "eos_token_id": [151645, 151643]})",
      "gc.json");
  EXPECT_FLOAT_EQ(q.temperature, 0.6f);
  EXPECT_EQ(q.top_k, 20);
  EXPECT_FLOAT_EQ(q.top_p, 0.95f);
  EXPECT_FLOAT_EQ(q.repetition_penalty, 1.0f);

  SamplerParams s = generation_defaults_from_json(R"({"do_sample": true})", "gc.json");
  EXPECT_FLOAT_EQ(s.temperature, 1.0f);
  EXPECT_EQ(s.top_k, 50);  // transformers' default when sampling

  SamplerParams g = generation_defaults_from_json(
      R"({"temperature": 0.7, "repetition_penalty": 1.1})", "gc.json");
  EXPECT_EQ(g.temperature, 0.0f);  // no do_sample: greedy
  EXPECT_FLOAT_EQ(g.repetition_penalty, 1.1f);
  EXPECT_EQ(generation_defaults_from_json("", "none").temperature, 0.0f);

  try {
    generation_defaults_from_json(R"({"do_sample": true, "top_p": "high"})", "pack/gc.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kFormat);
    EXPECT_NE(std::string(e.what()).find("pack/gc.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos);
  }
  EXPECT_THROW(generation_defaults_from_json("{not json", "gc.json"), Error);
}

}  // namespace
}  // namespace shardlm
