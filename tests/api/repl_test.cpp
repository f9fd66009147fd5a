// shardlm-chat driven through piped stdin (no terminal), as a script would: the start-up
// summary, two turns with KV reuse visible in /stats, /reset, EOF; /system, /set, /think,
// /help, /quit; the context-full choice (truncate, reset, a message too long on its own);
// errors (bad pack, bad flag) with exit code 2. Ctrl-C needs a terminal: the cancel path it
// uses is tested in abi_test.c and session_test.cpp.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace {

const std::string kChat = SHARDLM_CHAT_BIN;
const std::string kFixture = SHARDLM_API_FIXTURE_DIR;

struct ChatRun {
  int exit_code = -1;
  std::string out;
};

ChatRun chat(const std::string& args, const std::string& input) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("repl_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string in = dir + "/in.txt", out = dir + "/out.txt";
  std::ofstream(in) << input;
  // HOME points at the temp dir: nothing is written to the real home.
  const std::string cmd =
      "HOME=" + dir + " " + kChat + " " + args + " < " + in + " > " + out + " 2>&1";
  ChatRun r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  r.out = ss.str();
  std::filesystem::remove_all(dir);
  return r;
}

std::vector<std::smatch> all_matches(const std::string& text, const std::regex& re) {
  std::vector<std::smatch> v;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it)
    v.push_back(*it);
  return v;
}

const std::string kBase = "--pack " + kFixture + "/tp2 --threads 2 --seed 3 --max-tokens 8 ";

TEST(ReplTest, EngineFlagsReachTheStepEngine) {
  // f32 KV in a 512-token pool without a prefix cache: /stats shows the pool, and the second
  // turn reuses nothing.
  const ChatRun r = chat(kBase + "--kv-dtype f32 --kv-cache-tokens 512 --block-size 8 "
                                 "--max-seqs 2 --no-prefix-cache",
                         "Hello there\nAnd a second question?\n/stats\n");
  SCOPED_TRACE(r.out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("a pool of 64 blocks x 8 tokens, f32"), std::string::npos);
  EXPECT_NE(r.out.find("of 64 blocks of 8 tokens held"), std::string::npos);
  EXPECT_NE(r.out.find("(0 reused from the KV cache"), std::string::npos);
  EXPECT_NE(r.out.find("prefix cache served 0 of 0 prompt tokens"), std::string::npos);
  const ChatRun bad = chat(kBase + "--kv-dtype f8", "hi\n");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("kv_dtype 'f8'"), std::string::npos) << bad.out;
}

TEST(ReplTest, ComputeFlagsReachTheBackend) {
  const ChatRun ok = chat(kBase + "--activations bf16 --backend-settings isa=avx2", "Hello\n");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  const ChatRun bad_mode = chat(kBase + "--activations int8", "hi\n");
  EXPECT_NE(bad_mode.exit_code, 0);
  EXPECT_NE(bad_mode.out.find("activations 'int8'"), std::string::npos) << bad_mode.out;
  const ChatRun bad_key = chat(kBase + "--backend-settings graphs=0", "hi\n");
  EXPECT_NE(bad_key.exit_code, 0);
  EXPECT_NE(bad_key.out.find("cpu backend: unknown setting 'graphs' (it takes: isa, amx_splits, "
                             "kv_touch, pin_threads)"),
            std::string::npos)
      << bad_key.out;
}

TEST(ReplTest, TwoTurnsResetAndEofThroughAPipe) {
  const ChatRun r =
      chat(kBase, "Hello there\n/stats\nAnd a second question?\n/stats\n/reset\n/stats\n");
  SCOPED_TRACE(r.out);
  EXPECT_EQ(r.exit_code, 0);
  // Start-up summary: model, tp, backend, memory plan.
  EXPECT_NE(r.out.find("model     qwen3 (Qwen3ForCausalLM)"), std::string::npos);
  EXPECT_NE(r.out.find("parallel  tp 2 x 1 threads, backend cpu"), std::string::npos);
  EXPECT_NE(r.out.find("memory plan: host memory"), std::string::npos);
  EXPECT_NE(r.out.find("sampling  temp 0.6, top_k 20, top_p 0.95"), std::string::npos);
  EXPECT_NE(r.out.find("> Hello there\n"), std::string::npos);
  EXPECT_NE(r.out.find("> And a second question?\n"), std::string::npos);

  const std::regex prompt_re(
      R"(prompt:   (\d+) tokens \((\d+) reused from the KV cache, (\d+) computed\) in [0-9.]+ s = [0-9.]+ tok/s)");
  const auto prompts = all_matches(r.out, prompt_re);
  ASSERT_EQ(prompts.size(), 2u);
  const int p1 = std::stoi(prompts[0][1]), reused1 = std::stoi(prompts[0][2]);
  const int p2 = std::stoi(prompts[1][1]), reused2 = std::stoi(prompts[1][2]),
            computed2 = std::stoi(prompts[1][3]);
  EXPECT_EQ(reused1, 0);
  // Turn 2 reuses every full 16-token KV block of what turn 1 computed (its prompt and 7 of its
  // 8 generated tokens) from the prefix cache.
  EXPECT_EQ(reused2, (p1 + 7) / 16 * 16);
  EXPECT_GT(reused2, 0);
  EXPECT_EQ(p2, reused2 + computed2);
  EXPECT_LE(computed2, 20 + 15);  // the pending token + the new message's ~15 tokens + a block
  EXPECT_EQ(all_matches(r.out, std::regex(R"(first token after [0-9.]+ s \(TTFT\))")).size(), 2u);
  EXPECT_EQ(
      all_matches(
          r.out,
          std::regex(
              R"(generate: 8 tokens, 7 decode steps in [0-9.]+ s = [0-9.]+ tok/s \(max tokens\))"))
          .size(),
      2u);
  EXPECT_NE(r.out.find("turns: 2"), std::string::npos);
  EXPECT_NE(r.out.find("kv cache: "), std::string::npos);  // /stats: blocks and prefix reuse
  EXPECT_NE(r.out.find("prefix cache served"), std::string::npos);
  EXPECT_NE(r.out.find("[conversation reset]"), std::string::npos);
  EXPECT_NE(r.out.find("context:  0 of 256 tokens, turns: 0"), std::string::npos);
}

TEST(ReplTest, CommandsAndQuit) {
  const ChatRun r = chat(kBase + "-q",
                         "/help\n/system Be brief.\n/set temp 0\n/set top-k 5\n/set bogus 1\n"
                         "/set temp hot\n/think off\n/set\nHi\n/frobnicate\n/quit\nnever read\n");
  SCOPED_TRACE(r.out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.find("memory plan"), std::string::npos);  // -q: no summary
  EXPECT_NE(r.out.find("/system TEXT"), std::string::npos);
  EXPECT_NE(r.out.find("[system message set]"), std::string::npos);
  EXPECT_NE(r.out.find("[temp = 0]"), std::string::npos);
  EXPECT_NE(r.out.find("[top-k = 5]"), std::string::npos);
  EXPECT_NE(r.out.find("error: unknown setting 'bogus'"), std::string::npos);
  EXPECT_NE(r.out.find("error: temp: 'hot' is not a number"), std::string::npos);
  EXPECT_NE(r.out.find("[thinking off]"), std::string::npos);
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(top_k\s+5\s)")));
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(top_p\s+0\.95 \(pack default\))")));
  EXPECT_NE(r.out.find("> Hi\n"), std::string::npos);
  EXPECT_NE(r.out.find("unknown command /frobnicate"), std::string::npos);
  EXPECT_EQ(r.out.find("never read"), std::string::npos);
}

TEST(ReplTest, FullContextOffersTruncateAndReset) {
  std::string words;
  for (int i = 0; i < 20; ++i) words += "word ";
  std::string too_long;
  for (int i = 0; i < 60; ++i) too_long += "word ";
  const ChatRun r = chat(
      "--pack " + kFixture + "/tp1 --threads 2 --seed 3 --max-tokens 8 -q --max-seq 40",
      "hi\n" + words + "\nt\n/stats\n" + too_long + "\nt\nt\n/set max_tokens -1\nhey\nr\n/stats\n");
  SCOPED_TRACE(r.out);
  EXPECT_EQ(r.exit_code, 0);
  // The 20-word message does not fit after the first turn: truncate, then it is answered.
  EXPECT_NE(r.out.find("[context full: the input needs"), std::string::npos);
  EXPECT_NE(r.out.find("Context full ("), std::string::npos);
  EXPECT_NE(r.out.find("[dropped the 1 oldest turn]"), std::string::npos);
  EXPECT_NE(r.out.find("turns: 1"), std::string::npos);
  // 60 words never fit: the first 't' drops the last turn, the second finds nothing to drop.
  EXPECT_NE(r.out.find("the message alone does not fit in 40 tokens"), std::string::npos);
  // Generating until the context is full cuts the answer and offers the choice again.
  EXPECT_NE(r.out.find("[the answer was cut: the context is full]"), std::string::npos);
  EXPECT_NE(r.out.find("[conversation reset]"), std::string::npos);
  EXPECT_NE(r.out.find("context:  0 of 40 tokens, turns: 0"), std::string::npos);
}

TEST(ReplTest, ErrorsExitWithCodeTwoAndAMessage) {
  ChatRun r = chat("--pack /nonexistent/pack", "");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("/nonexistent/pack"), std::string::npos) << r.out;
  r = chat("--pack " + kFixture + "/tp1 --top-p x", "");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("top-p"), std::string::npos) << r.out;
  r = chat("--pack " + kFixture + "/ids", "");  // no tokenizer, no template
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("has no tokenizer"), std::string::npos) << r.out;
  r = chat("--help", "");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("usage: shardlm-chat --pack DIR"), std::string::npos);
}

TEST(ReplTest, PlanJson) {
  const ChatRun r =
      chat("--pack " + kFixture + "/tp2 --threads 2 --plan-json --mem-fraction 0.5", "");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("\"mem_fraction\": 0.5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"ranks\""), std::string::npos);
}

}  // namespace
