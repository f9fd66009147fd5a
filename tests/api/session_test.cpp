// Session tests on the fixture pack (tiny random Qwen3 with the real Qwen3 tokenizer and chat
// template), sessions sharing one step engine: KV reuse across turns through the prefix cache
// (a turn computes only its new tokens, up to one block, and the reused context gives the same
// tokens as a fresh recompute on an engine without a prefix cache), the context always equals the
// template's rendering, Qwen3 no-think re-rendering, stop strings spanning token boundaries, seeded
// reproducibility, stop ids, context-full behaviour, truncation, cancel, tp 1 vs tp 2.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <thread>

#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/model_text.h"
#include "runtime/engine/session.h"

namespace shardlm {
namespace {

const std::string kFixture = SHARDLM_API_FIXTURE_DIR;

struct Model {
  std::shared_ptr<Engine> engine;
  std::shared_ptr<ServingLoop> loop;
  std::shared_ptr<const ModelText> text;
};

constexpr int64_t kBlock = 16;  // the engine's default block_size

Model open_model(const std::string& sub, int64_t n_ctx = 256, bool prefix_cache = true) {
  EngineOptions eo;
  eo.pack_dir = kFixture + "/" + sub;
  eo.n_threads = 2;
  eo.n_ctx = n_ctx;
  eo.default_sequence = false;
  eo.kv_blocks = -1;
  Model m;
  m.engine = std::make_shared<Engine>(eo);
  StepEngineOptions so;
  so.prefix_cache = prefix_cache;
  m.loop = std::make_shared<ServingLoop>(m.engine, so);
  m.text = ModelText::load(m.engine->pack(0));
  return m;
}

// One model shared by the tests of this file (loading the 11 MB tokenizer takes a moment).
const Model& shared_model() {
  static const Model m = open_model("tp2");
  return m;
}

// The same pack without a prefix cache: every request computes its whole prompt.
const Model& uncached_model() {
  static const Model m = open_model("tp2", 256, false);
  return m;
}

int64_t whole_blocks(int64_t n) {
  return n / kBlock * kBlock;
}

GenerationRequest greedy(int64_t max_tokens) {
  GenerationRequest r;
  r.sampling.temperature = 0;
  r.max_new_tokens = max_tokens;
  r.ignore_eos = true;
  return r;
}

nlohmann::ordered_json conversation_with(const Session& s, const std::string& user) {
  nlohmann::ordered_json m = nlohmann::ordered_json::array();
  if (!s.system().empty()) m.push_back({{"role", "system"}, {"content", s.system()}});
  for (const auto& x : s.messages()) m.push_back(x);
  m.push_back({{"role", "user"}, {"content", user}});
  return m;
}

// The context the session computed (its first n_prompt tokens) fed to a fresh session from
// scratch must give the same greedy tokens: proves reused KV rows are the right ones.
void expect_same_as_fresh(const Model& m, const Session& s, const GenerationResult& r,
                          int64_t max_tokens) {
  (void)m;
  const std::vector<int32_t> ctx(s.tokens().begin(), s.tokens().begin() + r.n_prompt);
  Session fresh(uncached_model().loop, uncached_model().text);
  const GenerationResult f = fresh.complete_tokens(ctx, greedy(max_tokens));
  EXPECT_EQ(f.n_reused, 0);
  EXPECT_EQ(f.tokens, r.tokens);
}

TEST(ModelTextTest, StopIdsAndDefaultsComeFromThePack) {
  const ModelText& t = *shared_model().text;
  ASSERT_TRUE(t.has_tokenizer());
  ASSERT_TRUE(t.has_chat_template());
  EXPECT_TRUE(t.template_has_thinking_switch());
  const int32_t im_end = t.tokenizer().token_id("<|im_end|>");
  const int32_t eot = t.tokenizer().token_id("<|endoftext|>");
  EXPECT_EQ(t.end_of_turn_id(), im_end);
  EXPECT_EQ(t.stop_ids(), (std::vector<int32_t>{eot, im_end}));
  EXPECT_FLOAT_EQ(t.defaults().temperature, 0.6f);
  EXPECT_EQ(t.defaults().top_k, 20);
  EXPECT_FLOAT_EQ(t.defaults().top_p, 0.95f);
}

TEST(SessionTest, SecondTurnComputesOnlyNewTokensAndMatchesAFreshRecompute) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  s.set_system("You are terse.");
  const GenerationResult r1 = s.chat("Hello there, how are you?", greedy(8));
  EXPECT_EQ(r1.n_reused, 0);
  EXPECT_EQ(r1.n_prefilled, r1.n_prompt);
  EXPECT_EQ(r1.tokens.size(), 8u);
  EXPECT_EQ(r1.finish, FinishReason::kMaxTokens);
  // Every full block of the computed context is cached (the last sampled token is pending).
  const int64_t in_kv = s.n_in_kv();
  EXPECT_EQ(in_kv, whole_blocks(s.n_ctx_used() - 1));
  EXPECT_GT(in_kv, 0);

  const std::string user2 = "And what is the capital of France?";
  const std::string rendered = m.text->render(conversation_with(s, user2), true, {});
  const GenerationResult r2 = s.chat(user2, greedy(8));
  // Everything already computed was reused; only the new message (+ the pending token) ran.
  EXPECT_EQ(r2.n_reused, in_kv);
  EXPECT_EQ(r2.n_prompt, r2.n_reused + r2.n_prefilled);
  const std::string delta = rendered.substr(
      m.text->tokenizer()
          .decode(std::vector<int32_t>(s.tokens().begin(), s.tokens().begin() + r1.n_prompt + 8))
          .size());
  // The new message, the pending token and at most one partly filled block before them.
  EXPECT_LE(r2.n_prefilled,
            static_cast<int64_t>(m.text->tokenizer().encode(delta).size()) + 1 + kBlock - 1);
  // The context equals the template's rendering of the whole conversation.
  const std::vector<int32_t> ctx(s.tokens().begin(), s.tokens().begin() + r2.n_prompt);
  EXPECT_EQ(m.text->tokenizer().decode(ctx), rendered);

  // A fresh session fed the same context from scratch generates the same tokens.
  expect_same_as_fresh(m, s, r2, 8);
  EXPECT_EQ(s.n_turns(), 2);
  EXPECT_EQ(s.messages().size(), 4u);
  EXPECT_EQ(s.messages()[3]["content"], r2.text);
}

TEST(SessionTest, Qwen3NoThinkReRendersTheLastAnswerAndStaysExact) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  s.set_thinking(false);
  const GenerationResult r1 = s.chat("Hi", greedy(6));
  const std::string user2 = "Tell me more";
  nlohmann::ordered_json extra = {{"enable_thinking", false}};
  const std::string rendered = m.text->render(conversation_with(s, user2), true, extra);
  const GenerationResult r2 = s.chat(user2, greedy(6));
  // The template drops the earlier answer's empty <think></think> block: reuse stops before it.
  // r1's prompt ended in "<|im_start|>assistant\n<think>\n\n</think>\n\n"; the re-rendering
  // keeps "<|im_start|>assistant\n" and drops the think block, so reuse ends inside r1's prompt.
  EXPECT_LT(r2.n_reused, r1.n_prompt);
  EXPECT_GE(r2.n_reused, whole_blocks(r1.n_prompt - 6));
  const std::vector<int32_t> ctx(s.tokens().begin(), s.tokens().begin() + r2.n_prompt);
  EXPECT_EQ(m.text->tokenizer().decode(ctx), rendered);
  EXPECT_NE(rendered.find("<think>\n\n</think>\n\n"), std::string::npos);  // the new prompt's
  expect_same_as_fresh(m, s, r2, 6);
}

TEST(SessionTest, ChangingTheSystemMessageRecomputesFromTheChange) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  s.set_system("A");
  s.chat("one", greedy(4));
  s.set_system("B");
  const GenerationResult r = s.chat("two", greedy(4));
  EXPECT_LE(r.n_reused, 4);  // only "<|im_start|>system\n" can be kept
  const std::vector<int32_t> ctx(s.tokens().begin(), s.tokens().begin() + r.n_prompt);
  EXPECT_NE(m.text->tokenizer().decode(ctx).find("system\nB<|im_end|>"), std::string::npos);
  expect_same_as_fresh(m, s, r, 4);
}

TEST(SessionTest, StopStringAcrossATokenBoundaryEndsTheReplyBeforeIt) {
  const Model& m = shared_model();
  const text::Tokenizer& tok = m.text->tokenizer();
  Session s(m.loop, m.text);
  const GenerationResult full = s.chat("Write something", greedy(12));
  ASSERT_EQ(full.tokens.size(), 12u);
  // Two consecutive generated tokens whose pieces are non-empty, valid UTF-8 text.
  size_t i = 3;
  std::string a, b;
  for (; i + 1 < full.tokens.size(); ++i) {
    a = tok.decode({full.tokens[i]});
    b = tok.decode({full.tokens[i + 1]});
    if (!a.empty() && !b.empty() && a.find("\xEF\xBF\xBD") == std::string::npos &&
        b.find("\xEF\xBF\xBD") == std::string::npos && a == tok.token_to_piece(full.tokens[i]) &&
        b == tok.token_to_piece(full.tokens[i + 1])) {
      break;
    }
  }
  ASSERT_LT(i + 1, full.tokens.size()) << "no two plain consecutive tokens in: " << full.text;
  // The stop string is the end of one token's text and the start of the next one's.
  const std::string stop = a.substr(a.size() / 2) + b.substr(0, (b.size() + 1) / 2);
  SCOPED_TRACE("stop string '" + stop + "' in '" + full.text + "'");
  const size_t at = full.text.find(stop);
  ASSERT_NE(at, std::string::npos);

  Session again(m.loop, m.text);
  GenerationRequest r = greedy(12);
  r.stop_strings = {"never appears \x01", stop};
  std::string streamed;
  const GenerationResult g = again.chat("Write something", r, [&](int32_t, std::string_view t) {
    streamed += t;
    return true;
  });
  EXPECT_EQ(g.finish, FinishReason::kStopString);
  EXPECT_EQ(g.stop_string, stop);
  EXPECT_EQ(g.text, full.text.substr(0, at));
  EXPECT_EQ(streamed, g.text);  // the stop string never reached the callback
  EXPECT_EQ(again.messages().back()["content"], g.text);
}

TEST(SessionTest, SameSeedSameTokensDifferentSeedDifferentTokens) {
  const Model& m = shared_model();
  auto run = [&](uint64_t seed) {
    Session s(m.loop, m.text);
    GenerationRequest r;
    r.sampling.temperature = 1.0f;
    r.sampling.top_p = 0.9f;
    r.sampling.seed = seed;
    r.max_new_tokens = 12;
    r.ignore_eos = true;
    return s.chat("Roll the dice", r).tokens;
  };
  const std::vector<int32_t> a = run(7);
  EXPECT_EQ(a, run(7));
  EXPECT_NE(a, run(8));
}

TEST(SessionTest, StreamedTextEqualsTheReplyAndTheCallbackCanStop) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  std::string streamed;
  int calls = 0;
  const GenerationResult r = s.chat("Count", greedy(10), [&](int32_t tok, std::string_view t) {
    if (tok >= 0) ++calls;
    streamed += t;
    return true;
  });
  EXPECT_EQ(calls, 10);
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.text, m.text->tokenizer().decode(r.tokens));

  Session t(m.loop, m.text);
  int n = 0;
  const GenerationResult c =
      t.chat("Count", greedy(10), [&](int32_t, std::string_view) { return ++n < 3; });
  EXPECT_EQ(c.finish, FinishReason::kCallback);
  EXPECT_EQ(c.tokens.size(), 3u);
}

TEST(SessionTest, StopIdEndsTheReplyAndIsKeptPendingForTheNextTurn) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  const GenerationResult probe = s.chat("Go", greedy(5));
  // Make the first generated token that is not a repeat of an earlier one (the random model
  // repeats itself) a stop id, from the second on: the reply ends before it.
  const auto& p = probe.tokens;
  size_t i = 1;
  while (i < p.size() && std::find(p.begin(), p.begin() + static_cast<long>(i), p[i]) !=
                             p.begin() + static_cast<long>(i)) {
    ++i;
  }
  ASSERT_LT(i, p.size()) << "the probe's tokens are all one id";
  Session t(m.loop, m.text);
  GenerationRequest r = greedy(5);
  r.stop_ids = {p[i]};
  const GenerationResult g = t.chat("Go", r);
  EXPECT_EQ(g.finish, FinishReason::kStopToken);
  EXPECT_EQ(g.tokens, std::vector<int32_t>(p.begin(), p.begin() + static_cast<long>(i)));
  EXPECT_EQ(t.tokens().back(), p[i]);
  EXPECT_EQ(t.n_in_kv(), whole_blocks(t.n_ctx_used() - 1));
}

TEST(SessionTest, ContextFullBeforeAndDuringGeneration) {
  const Model m = open_model("tp1", 40);
  Session s(m.loop, m.text);
  std::string long_message;
  for (int i = 0; i < 60; ++i) long_message += "word ";
  try {
    s.chat(long_message, greedy(4));
    FAIL() << "expected kKvFull";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kKvFull);
    EXPECT_NE(std::string(e.what()).find("context holds 40"), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.messages().size(), 0u);  // nothing changed
  EXPECT_EQ(s.n_ctx_used(), 0);

  GenerationRequest r = greedy(-1);  // until the context is full
  const GenerationResult g = s.chat("hi", r);
  EXPECT_EQ(g.finish, FinishReason::kContextFull);
  EXPECT_EQ(s.n_ctx_used(), 40);
  EXPECT_EQ(s.n_turns(), 1);
  EXPECT_THROW(s.chat("again", greedy(2)), Error);
  EXPECT_EQ(s.truncate_turns(1), 1);
  EXPECT_EQ(s.n_turns(), 0);
  const GenerationResult after = s.chat("again", greedy(2));  // fits once the turn is gone
  EXPECT_EQ(after.tokens.size(), 2u);
  EXPECT_LE(s.n_ctx_used(), 40);
}

TEST(SessionTest, TruncateDropsWholeTurnsAndKeepsTheSystemMessage) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  s.set_system("sys");
  s.add_message("user", "u1");
  s.add_message("assistant", "a1");
  s.add_message("user", "u2");
  s.add_message("assistant", "a2");
  s.add_message("user", "u3");
  EXPECT_EQ(s.n_turns(), 3);
  EXPECT_EQ(s.truncate_turns(2), 2);
  ASSERT_EQ(s.messages().size(), 1u);
  EXPECT_EQ(s.messages()[0]["content"], "u3");
  EXPECT_EQ(s.system(), "sys");
  EXPECT_EQ(s.truncate_turns(5), 1);
  EXPECT_EQ(s.messages().size(), 0u);
}

TEST(SessionTest, ResetForgetsEverythingButTheSystemMessage) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  s.set_system("sys");
  s.chat("a", greedy(3));
  s.reset();
  EXPECT_EQ(s.n_ctx_used(), 0);
  EXPECT_EQ(s.n_in_kv(), 0);
  EXPECT_EQ(s.messages().size(), 0u);
  EXPECT_EQ(s.system(), "sys");
  const GenerationResult r = s.chat("a", greedy(3));
  EXPECT_EQ(r.n_reused, 0);
}

TEST(SessionTest, CancelFromAnotherThreadStopsTheReply) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  std::atomic<bool> first{false};
  std::thread canceller([&] {
    while (!first.load()) std::this_thread::yield();
    s.cancel();
  });
  const GenerationResult r = s.chat("Go on forever", greedy(-1), [&](int32_t, std::string_view) {
    if (!first.exchange(true)) {
      // Hold the first token until the other thread has cancelled.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  });
  canceller.join();
  EXPECT_EQ(r.finish, FinishReason::kCancelled);
  EXPECT_GE(r.tokens.size(), 1u);
  EXPECT_LT(r.tokens.size(), 10u);
  EXPECT_EQ(s.n_turns(), 1);  // the partial reply is part of the conversation
  s.cancel();                 // nothing running: no effect on the next call
  EXPECT_EQ(s.chat("next", greedy(2)).finish, FinishReason::kMaxTokens);
}

TEST(SessionTest, TensorParallelSizesAgreeOnTheFirstTokens) {
  const Model m1 = open_model("tp1");
  const Model& m2 = shared_model();
  Session a(m1.loop, m1.text), b(m2.loop, m2.text);
  const GenerationResult ra = a.chat("Same question", greedy(4));
  const GenerationResult rb = b.chat("Same question", greedy(4));
  EXPECT_EQ(ra.n_prompt, rb.n_prompt);
  // bf16 weights, f32 math; the logits of tp 1 and tp 2 differ only by summation order.
  EXPECT_EQ(ra.tokens[0], rb.tokens[0]);
}

TEST(SessionTest, CompleteReusesTheCommonTokenPrefix) {
  const Model& m = shared_model();
  Session s(m.loop, m.text);
  const std::string base =
      "The quick brown fox jumps over the lazy dog while the cat watches from the warm window "
      "sill, and a bird sings in the old oak tree near the river bank";
  const GenerationResult r1 = s.complete(base, greedy(4));
  EXPECT_EQ(r1.n_reused, 0);
  ASSERT_GE(r1.n_prompt, 2 * kBlock);
  const std::string longer = base + " at dawn every single day";
  const GenerationResult r2 = s.complete(longer, greedy(4));
  EXPECT_EQ(r2.n_reused, whole_blocks(r1.n_prompt));  // the first prompt's full blocks
  EXPECT_EQ(r2.n_prompt, static_cast<int64_t>(m.text->tokenizer().encode(longer, true).size()));
  const GenerationResult r3 = s.complete(longer, greedy(4));
  // Everything cached but the last partial block (at least one token runs for its logits).
  EXPECT_EQ(r3.n_reused, whole_blocks(r3.n_prompt - 1));
  EXPECT_EQ(r3.tokens, r2.tokens);
}

}  // namespace
}  // namespace shardlm
