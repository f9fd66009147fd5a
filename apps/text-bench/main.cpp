// shardlm-text-bench: measures Tokenizer::encode throughput (MB/s) on a few MB of mixed text
// (English prose, code, Chinese, emoji, whitespace runs) and the time to encode adversarial
// inputs (1/2/4 MB of one repeated character, of random bytes) to show linear scaling; also
// chat-template render time. Usage: shardlm-text-bench [testdata_dir]
// Not a test: nothing is asserted.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

#include "runtime/text/chat_template.h"
#include "runtime/text/tokenizer.h"

using shardlm::text::ChatTemplate;
using shardlm::text::Tokenizer;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    throw std::runtime_error(path + ": cannot open (pass the folder that holds tokenizer/qwen3 " +
                             "and tokenizer/llama2, e.g. tests/data)");
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string mixed_text(size_t bytes) {
  const char* parts[] = {
      "The quick brown fox jumps over the lazy dog. Tensor parallelism splits each layer's "
      "weights across devices; every rank computes a slice and all-reduces the result.\n",
      "def forward(self, x):\n    h = self.norm(x)\n    return x + self.mlp(h)  # residual\n\n",
      "大型语言模型的推理需要高效的分词器和内存管理。我们在多个GPU上运行张量并行。\n",
      "Emoji test 😀🚀👍🏽 and symbols ∑∫ → ≠, numbers 3.14159 and 1,000,000.\n",
      "    indented    with     runs\tof\t\twhitespace   \n\n\n",
      "Ελληνικά, русский текст, العربية, हिन्दी, 日本語のテキスト。\n"};
  std::string s;
  size_t k = 0;
  while (s.size() < bytes) s += parts[k++ % (sizeof(parts) / sizeof(parts[0]))];
  return s;
}

void bench_encode(const char* name, const Tokenizer& tok, const std::string& text, int reps) {
  size_t n_ids = tok.encode(text).size();  // warm-up (fills the word cache)
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) n_ids = tok.encode(text).size();
  const double s = seconds_since(t0) / reps;
  std::printf("  %-10s encode %6.2f MB mixed text: %7.1f MB/s  (%zu ids, %.3f s)\n", name,
              text.size() / 1e6, text.size() / 1e6 / s, n_ids, s);
}

void bench_adversarial(const char* name, const Tokenizer& tok) {
  std::mt19937 rng(1);
  for (const char* kind :
       {"repeat 'a'", "repeat ' '", "repeat '\\n'", "repeat '你'", "random bytes"}) {
    std::printf("  %-10s %-13s", name, kind);
    for (size_t mb : {1, 2, 4}) {
      std::string s;
      const size_t n = mb << 20;
      s.reserve(n + 4);
      const std::string k = kind;
      if (k == "random bytes") {
        while (s.size() < n) s.push_back(static_cast<char>(rng() & 0xFF));
      } else {
        const std::string unit = k == "repeat 'a'"     ? "a"
                                 : k == "repeat ' '"   ? " "
                                 : k == "repeat '\\n'" ? "\n"
                                                       : "\xE4\xBD\xA0";
        while (s.size() < n) s += unit;
      }
      auto t0 = std::chrono::steady_clock::now();
      const size_t ids = tok.encode(s).size();
      std::printf("  %zu MB: %6.3f s (%zu ids)", mb, seconds_since(t0), ids);
    }
    std::printf("\n");
  }
}

int run(int argc, char** argv) {
  const std::string arg = argc > 1 ? argv[1] : "";
  if (arg == "-h" || arg == "--help" || argc > 2) {
    std::fprintf(argc > 2 ? stderr : stdout,
                 "usage: shardlm-text-bench [testdata_dir]\n"
                 "  testdata_dir holds tokenizer/qwen3 and tokenizer/llama2 (default %s)\n",
                 SHARDLM_DEFAULT_TESTDATA);
    return argc > 2 ? 2 : 0;
  }
  const std::string dir =
      (arg.empty() ? std::string(SHARDLM_DEFAULT_TESTDATA) : arg) + "/tokenizer/";
  auto t0 = std::chrono::steady_clock::now();
  const Tokenizer qwen = Tokenizer::from_json(slurp(dir + "qwen3/tokenizer.json"),
                                              slurp(dir + "qwen3/tokenizer_config.json"));
  std::printf("load qwen3 tokenizer.json (11 MB): %.3f s\n", seconds_since(t0));
  t0 = std::chrono::steady_clock::now();
  const Tokenizer llama = Tokenizer::from_json(slurp(dir + "llama2/tokenizer.json"),
                                               slurp(dir + "llama2/tokenizer_config.json"));
  std::printf("load llama2 tokenizer.json (1.8 MB): %.3f s\n", seconds_since(t0));

  const std::string text = mixed_text(4 << 20);
  std::printf("encode throughput (single thread, warm word cache):\n");
  bench_encode("qwen3", qwen, text, 2);
  bench_encode("llama2", llama, text, 2);
  {
    // Cold: every word new (fresh tokenizer, no cache hits on first pass).
    const Tokenizer cold = Tokenizer::from_json(slurp(dir + "qwen3/tokenizer.json"));
    auto t1 = std::chrono::steady_clock::now();
    cold.encode(text);
    const double s = seconds_since(t1);
    std::printf("  %-10s encode %6.2f MB mixed text: %7.1f MB/s  (first pass, cold cache)\n",
                "qwen3", text.size() / 1e6, text.size() / 1e6 / s);
  }
  std::printf("adversarial inputs (time should grow linearly with size):\n");
  bench_adversarial("qwen3", qwen);
  bench_adversarial("llama2", llama);

  const ChatTemplate tpl(
      nlohmann::json::parse(slurp(dir + "qwen3/tokenizer_config.json"))["chat_template"]
          .get<std::string>());
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  for (int k = 0; k < 50; ++k) {
    msgs.push_back({{"role", "user"}, {"content", "question " + std::to_string(k)}});
    msgs.push_back(
        {{"role", "assistant"}, {"content", "<think>hmm</think>answer " + std::to_string(k)}});
  }
  t0 = std::chrono::steady_clock::now();
  std::string out;
  for (int r = 0; r < 100; ++r) out = tpl.render(msgs, true, {{"enable_thinking", false}});
  std::printf("qwen3 chat template, 100 messages: %.3f ms per render (%zu bytes)\n",
              seconds_since(t0) * 10.0, out.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardlm-text-bench: %s\n", e.what());
    return 1;
  }
}
