// ModelConfig checks and the tensor-parallel split of one rank (DESIGN.md, TP rules).
#include "formats/model_config.h"

#include <climits>
#include <cstdint>

#include "runtime/core/status.h"

namespace shardlm {

const char* family_name(Family f) {
  switch (f) {
    case Family::kLlama: return "llama";
    case Family::kMistral: return "mistral";
    case Family::kQwen2: return "qwen2";
    case Family::kQwen3: return "qwen3";
  }
  return "?";
}

void validate_model_config(const ModelConfig& c, const std::string& where) {
  auto positive = [&](int64_t v, const char* field) {
    if (v <= 0) fail(StatusCode::kFormat, where + ": field '" + field + "' must be > 0, got " + std::to_string(v));
  };
  positive(c.n_vocab, "vocab_size");
  positive(c.n_embd, "hidden_size");
  positive(c.n_ff, "intermediate_size");
  positive(c.n_layer, "num_hidden_layers");
  positive(c.n_head, "num_attention_heads");
  positive(c.n_head_kv, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  // Upper bounds well past any real model, so that every size computed from the config (element
  // counts, bytes, fused widths) fits in int64 arithmetic; a config beyond them is corrupt.
  auto at_most = [&](int64_t v, int64_t max, const char* field) {
    if (v > max)
      fail(StatusCode::kFormat, where + ": field '" + field + "' is " + std::to_string(v) + ", more than " +
                                    std::to_string(max) + " (corrupt config?)");
  };
  at_most(c.n_vocab, INT32_MAX, "vocab_size");  // token ids are int32
  at_most(c.n_embd, int64_t{1} << 20, "hidden_size");
  at_most(c.n_ff, int64_t{1} << 22, "intermediate_size");
  at_most(c.n_layer, 4096, "num_hidden_layers");
  at_most(c.n_head, 1 << 16, "num_attention_heads");
  at_most(c.n_head_kv, 1 << 16, "num_key_value_heads");
  at_most(c.head_dim, 1 << 14, "head_dim");
  at_most(c.max_position_embeddings, int64_t{1} << 40, "max_position_embeddings");
  at_most(c.sliding_window, int64_t{1} << 40, "sliding_window");
  if (c.n_head * c.head_dim > (int64_t{1} << 22))
    fail(StatusCode::kFormat, where + ": num_attention_heads x head_dim = " + std::to_string(c.n_head * c.head_dim) +
                                  " is more than " + std::to_string(int64_t{1} << 22) + " (corrupt config?)");
  if (c.n_head % c.n_head_kv != 0)
    fail(StatusCode::kFormat, where + ": num_attention_heads " + std::to_string(c.n_head) +
                                  " is not a multiple of num_key_value_heads " + std::to_string(c.n_head_kv));
  if (c.head_dim % 2 != 0)
    fail(StatusCode::kFormat, where + ": head_dim " + std::to_string(c.head_dim) + " must be even for RoPE");
  if (c.sliding_window < 0) fail(StatusCode::kFormat, where + ": sliding_window must be >= 0");
  if (!(c.rms_norm_eps > 0)) fail(StatusCode::kFormat, where + ": rms_norm_eps must be > 0");
  if (!(c.rope_theta > 0)) fail(StatusCode::kFormat, where + ": rope_theta must be > 0");
}

ParallelLayout make_parallel_layout(const ModelConfig& c, int32_t tp, int32_t rank) {
  if (tp < 1) fail(StatusCode::kInvalidArg, "tensor-parallel size must be >= 1, got " + std::to_string(tp));
  if (rank < 0 || rank >= tp)
    fail(StatusCode::kInvalidArg, "rank " + std::to_string(rank) + " is outside tp size " + std::to_string(tp));
  const std::string tps = std::to_string(tp);
  if (c.n_head % tp != 0)
    fail(StatusCode::kInvalidArg, "--tp " + tps + " does not divide num_attention_heads " + std::to_string(c.n_head) +
                                      "; choose a tp that divides it");
  if (c.n_ff % tp != 0)
    fail(StatusCode::kInvalidArg, "--tp " + tps + " does not divide intermediate_size " + std::to_string(c.n_ff) +
                                      "; choose a tp that divides it");
  if (c.n_head_kv % tp != 0 && tp % c.n_head_kv != 0)
    fail(StatusCode::kInvalidArg, "--tp " + tps + " and num_key_value_heads " + std::to_string(c.n_head_kv) +
                                      " must divide one another (kv heads are split, or replicated when tp > kv heads)");
  if (c.n_vocab < tp)
    fail(StatusCode::kInvalidArg, "--tp " + tps + " exceeds vocab_size " + std::to_string(c.n_vocab));
  ParallelLayout p;
  p.tp_size = tp;
  p.tp_rank = rank;
  p.n_head_local = c.n_head / tp;
  p.head_start = p.n_head_local * rank;
  if (c.n_head_kv % tp == 0) {
    p.n_head_kv_local = c.n_head_kv / tp;
    p.kv_head_start = p.n_head_kv_local * rank;
  } else {  // tp > n_head_kv: each rank holds the one kv head its query heads use
    p.n_head_kv_local = 1;
    p.kv_head_start = p.head_start / (c.n_head / c.n_head_kv);
  }
  p.n_ff_local = c.n_ff / tp;
  p.ff_start = p.n_ff_local * rank;
  const int64_t per_rank = (c.n_vocab + tp - 1) / tp;
  if (per_rank * (tp - 1) >= c.n_vocab)  // e.g. vocab 6 at tp 4: 2, 2, 2, 0
    fail(StatusCode::kInvalidArg, "--tp " + tps + " leaves the last rank no vocabulary rows (vocab_size " +
                                      std::to_string(c.n_vocab) + ", " + std::to_string(per_rank) +
                                      " per rank); choose a smaller tp");
  p.vocab_start = std::min<int64_t>(per_rank * rank, c.n_vocab);
  p.n_vocab_local = std::min<int64_t>(per_rank, c.n_vocab - p.vocab_start);
  return p;
}

}  // namespace shardlm
