// One rank's share of the decoder-only transformer (Llama / Mistral / Qwen2 / Qwen3) and its
// tensor-parallel forward: vocab-parallel embedding (+ all-reduce), per layer column-parallel
// QKV and gate/up, row-parallel o_proj and down, each followed by one all-reduce (exactly two
// per layer), then this rank's slice of the vocabulary logits. Family differences (QKV bias,
// q/k norm, sliding window, RoPE scaling) come from FamilySpec. Scratch is allocated once for
// `max_batch_tokens` tokens per forward. Not the generation loop (engine/) and not sampling.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "formats/pack_reader.h"
#include "runtime/backend/backend.h"
#include "runtime/comm/communicator.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/family.h"
#include "runtime/model/kv_pool.h"
#include "runtime/model/step_input.h"
#include "runtime/model/weights.h"

namespace shardlm {

class Transformer {
 public:
  // `pack` (the mapped weights), `backend` and `comm` must outlive the Transformer.
  Transformer(const PackReader& pack, Backend& backend, Communicator& comm, int64_t max_batch_tokens);

  const ModelConfig& config() const { return config_; }
  const ParallelLayout& layout() const { return layout_; }
  const ModelWeights& weights() const { return weights_; }
  int64_t max_batch_tokens() const { return max_tokens_; }

  // A KV cache sized for this rank (n_head_kv_local heads).
  std::unique_ptr<KvCache> make_cache(int64_t n_ctx) const;

  // Runs `ids` at positions [cache.n_past(), cache.n_past() + n_tokens), appends their K/V to
  // `cache`, and returns this rank's logits: [n_tokens, n_vocab_local] when all_logits, else
  // [1, n_vocab_local] for the last token. The tensor is scratch, valid until the next call.
  // Collective: every rank must call it with the same ids.   ids [n_tokens], n_tokens <= max_batch_tokens
  Tensor forward(std::span<const int32_t> ids, KvCache& cache, bool all_logits);

  // The shape of this rank's paged KV pool for `n_blocks` blocks.
  KvPoolShape kv_pool_shape(int64_t n_blocks, int64_t block_size, DType kv_dtype) const;
  // Runs one step (runtime/model/step_input.h): stores every token's K/V at its slot in `kv`,
  // attends each token to its own sequence through the block table, and returns this rank's
  // logits of the step's logits_rows: [n_logits, n_vocab_local] (scratch, valid until the next
  // call; empty when no rows are asked). The step must have been validate()d against this
  // model's limits. Collective: every rank must run the same step.
  Tensor step(const StepInput& step, KvPool& kv);

 private:
  void attention_block(int64_t layer, int64_t n_tokens, std::span<const int32_t> pos,
                       KvCache& cache);
  // Attention norm, fused QKV matmul split into q/k/v, q/k norm (Qwen3) and RoPE for n tokens.
  //   q [n, n_head_local, head_dim], k/v [n, n_head_kv_local, head_dim], pos [n]
  void project_qkv(int64_t layer, int64_t n, std::span<const int32_t> pos, const Tensor& q,
                   const Tensor& k, const Tensor& v);
  void paged_attention_block(int64_t layer, const StepInput& step, KvPool& kv);
  void mlp_block(int64_t layer, int64_t n_tokens);
  Tensor logits_of_rows(std::span<const int32_t> rows);
  Tensor rows(const Tensor& t, int64_t n_tokens) const { return t.slice_rows(0, n_tokens); }

  Backend& backend_;
  Communicator& comm_;
  ModelConfig config_;
  ParallelLayout layout_;
  FamilySpec spec_;
  ModelWeights weights_;
  int64_t max_tokens_;
  int64_t q_dim_local_, kv_dim_local_;  // n_head_local * head_dim, n_head_kv_local * head_dim

  std::vector<std::unique_ptr<DeviceBuffer>> scratch_;
  Tensor inv_freq_;  // [head_dim / 2]
  Tensor x_;         // [max_batch_tokens, n_embd]        residual stream
  Tensor h_;         // [max_batch_tokens, n_embd]        normed
  Tensor qkv_;       // [max_batch_tokens, q_dim_local + 2 * kv_dim_local]
  Tensor q_;         // [max_batch_tokens, n_head_local, head_dim]
  Tensor k_new_;     // [max_batch_tokens, n_head_kv_local, head_dim]   step(): K before the pool
  Tensor v_new_;     // [max_batch_tokens, n_head_kv_local, head_dim]
  Tensor attn_;      // [max_batch_tokens, n_head_local * head_dim]
  Tensor proj_;      // [max_batch_tokens, n_embd]        o_proj / down output, all-reduced
  Tensor gate_up_;   // [max_batch_tokens, 2 * n_ff_local]
  Tensor act_;       // [max_batch_tokens, n_ff_local]
  Tensor logits_;    // [logit_rows, n_vocab_local], grown on demand
  std::unique_ptr<DeviceBuffer> logits_buf_;
};

}  // namespace shardlm
