// Names of the tensors inside a pack (not the Hugging Face names: packs hold fused, per-rank
// tensors). Shapes are this rank's ("_local" sizes from ParallelLayout), row-major [out, in]:
//
//   tok_embd            [n_vocab_local, n_embd]     Vocab     (rows vocab_start..)
//   output              [n_vocab_local, n_embd]     Vocab     absent when tie_word_embeddings
//   output_norm         [n_embd]                    Replicated
//   blk.N.attn_norm     [n_embd]                    Replicated
//   blk.N.wqkv          [(n_head_local + 2*n_head_kv_local) * head_dim, n_embd]   Column
//                       rows: q of local heads, then k, then v of local kv heads
//   blk.N.bqkv          [(n_head_local + 2*n_head_kv_local) * head_dim]          Column (attention_bias)
//   blk.N.q_norm        [head_dim]                  Replicated (qk_norm)
//   blk.N.k_norm        [head_dim]                  Replicated (qk_norm)
//   blk.N.wo            [n_embd, n_head_local * head_dim]   Row
//   blk.N.bo            [n_embd]                    FirstRank (o_proj_bias; rank 0 only)
//   blk.N.ffn_norm      [n_embd]                    Replicated
//   blk.N.w_gate_up     [2 * n_ff_local, n_embd]    Column    rows: gate, then up
//   blk.N.w_down        [n_embd, n_ff_local]        Row
//
// Matrices are stored in the pack's weight dtype; 1-D tensors (norms, biases) always in f32.
#pragma once

#include <cstdint>
#include <string>

namespace shardlm::tensor_names {

inline constexpr const char* kTokEmbd = "tok_embd";
inline constexpr const char* kOutput = "output";
inline constexpr const char* kOutputNorm = "output_norm";

inline std::string blk(int64_t layer, const char* what) {
  return "blk." + std::to_string(layer) + "." + what;
}

inline constexpr const char* kAttnNorm = "attn_norm";
inline constexpr const char* kWqkv = "wqkv";
inline constexpr const char* kBqkv = "bqkv";
inline constexpr const char* kQNorm = "q_norm";
inline constexpr const char* kKNorm = "k_norm";
inline constexpr const char* kWo = "wo";
inline constexpr const char* kBo = "bo";
inline constexpr const char* kFfnNorm = "ffn_norm";
inline constexpr const char* kWGateUp = "w_gate_up";
inline constexpr const char* kWDown = "w_down";

}  // namespace shardlm::tensor_names
