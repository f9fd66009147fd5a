// --perplexity: windows of the tokenized file scored by the step engine (prompt logits).
#include "apps/shardlm-bench/perplexity.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include "apps/common/prompt_input.h"
#include "runtime/core/status.h"
#include "runtime/engine/step_engine.h"

namespace shardlm::bench {

namespace {

// Sum over rows r of -log softmax(logits[r])[targets[r]], in double.   logits [rows, n_vocab]
double sum_nll(const std::vector<float>& logits, int64_t n_vocab, const int32_t* targets,
               int64_t rows) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * n_vocab;
    double m = row[0];
    for (int64_t v = 1; v < n_vocab; ++v) m = std::max(m, static_cast<double>(row[v]));
    double s = 0;
    for (int64_t v = 0; v < n_vocab; ++v) s += std::exp(static_cast<double>(row[v]) - m);
    total += (m + std::log(s)) - static_cast<double>(row[targets[r]]);
  }
  return total;
}

}  // namespace

PerplexityResult perplexity(Engine& engine, const std::string& path, int64_t ctx) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(StatusCode::kIo, "--perplexity: cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::vector<int32_t> ids = encode_prompt(engine.pack(0), ss.str(), false);
  if (ids.size() < 2) {
    fail(StatusCode::kInvalidArg, "--perplexity: " + path + " has " +
                                      std::to_string(ids.size()) +
                                      " tokens; at least 2 are needed");
  }
  // A window runs as a prompt that generates one token: n_ctx must hold ctx + 1.
  if (ctx < 2 || ctx >= engine.n_ctx()) {
    fail(StatusCode::kInvalidArg, "--ppl-ctx " + std::to_string(ctx) + " must be in [2, " +
                                      std::to_string(engine.n_ctx() - 1) +
                                      "] (the context n_ctx minus the generated token)");
  }
  const auto t0 = std::chrono::steady_clock::now();
  StepEngineOptions so;
  so.prefix_cache = false;  // every position's logits are needed
  so.max_seqs = 8;
  StepEngine se(engine, so);
  const int64_t n_vocab = engine.config().n_vocab;
  PerplexityResult r;
  r.n_tokens = static_cast<int64_t>(ids.size());
  double nll = 0;
  // Windows in groups of max_seqs, so at most that many windows' logits are held at once.
  for (int64_t begin = 0; begin + 1 < r.n_tokens;) {
    std::vector<std::pair<RequestId, int64_t>> group;  // request, window start
    for (int i = 0; i < so.max_seqs && begin + 1 < r.n_tokens; ++i, begin += ctx) {
      const int64_t end = std::min(r.n_tokens, begin + ctx);
      TokenRequest req;
      req.prompt.assign(ids.begin() + begin, ids.begin() + end);
      req.prompt_logits = true;
      req.max_new_tokens = 1;
      req.sampling.temperature = 0;
      group.emplace_back(se.submit(std::move(req)), begin);
    }
    se.run_to_completion();
    for (const auto& [id, start] : group) {
      const TokenResult t = se.take_result(id);
      const int64_t n = t.n_prompt - 1;  // row i predicts token start + i + 1
      nll += sum_nll(t.prompt_logits, n_vocab, ids.data() + start + 1, n);
      r.n_scored += n;
      ++r.n_windows;
    }
  }
  r.mean_nll = nll / static_cast<double>(r.n_scored);
  r.perplexity = std::exp(r.mean_nll);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace shardlm::bench
