// The --perplexity mode of shardlm-bench: the perplexity of a text file through the runtime.
// The text is tokenized with the pack's tokenizer (no special tokens added), cut into
// non-overlapping windows of `ctx` tokens (the last may be shorter), and every window is scored
// on its own from scratch: each token after the window's first is predicted from the tokens before
// it in the window, and perplexity = exp(mean negative log-likelihood over all scored tokens).
// tools/train/perplexity.py computes the same figure with PyTorch/transformers.
// Windows run through the step engine batched (max_seqs at once), at any TP.
// Not a benchmark of speed (the time is reported, not the point).
#pragma once

#include <cstdint>
#include <string>

#include "runtime/engine/engine.h"

namespace shardlm::bench {

struct PerplexityResult {
  double perplexity = 0;
  double mean_nll = 0;
  int64_t n_tokens = 0;   // tokens of the file
  int64_t n_scored = 0;   // predictions scored
  int64_t n_windows = 0;
  double seconds = 0;
};

// `engine` needs a paged KV pool with n_ctx >= ctx. Throws Error naming the file when it cannot
// be read or has fewer than 2 tokens.
PerplexityResult perplexity(Engine& engine, const std::string& path, int64_t ctx);

}  // namespace shardlm::bench
