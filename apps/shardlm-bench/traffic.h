// What one decode step reads and what one prefill computes, counted from the packs of every
// rank (the roofline numerators of shardlm-bench). Definitions, all summed over ranks:
//   weight bytes   every tensor of every rank file except the embedding table: the matrices
//                  (wqkv, wo, w_gate_up, w_down), norms and biases, and the lm_head (`output`,
//                  or `tok_embd` itself when the embeddings are tied: it is then read in full
//                  as the lm_head), each read once per decode step;
//   embedding row  one row of tok_embd (the new token's; read by the rank that holds it);
//   KV bytes       per cached position: K and V rows of every layer and local kv head, in the
//                  KV pool's element type (bf16 unless --kv-dtype or the compute flags choose
//                  another), on every rank (replicated kv heads count per rank).
// Activations are a few KiB per step and stay in cache; they are not counted.
#pragma once

#include <cstdint>
#include <vector>

#include "apps/shardlm-bench/machine_probe.h"
#include "formats/pack_reader.h"

namespace shardlm::bench {

struct Traffic {
  uint64_t weight_bytes = 0;     // per decode step, lm_head included
  uint64_t lm_head_bytes = 0;    // part of weight_bytes
  uint64_t embed_row_bytes = 0;  // per decode step
  uint64_t kv_bytes_per_pos = 0;
  uint64_t matrix_params = 0;  // blk.* matrix elements (per-token GEMM work), all ranks
  uint64_t lm_head_params = 0;
  std::vector<Region> weight_regions;  // the bytes of weight_bytes, tensor by tensor

  // Bytes read by one decode step that attends `n_kv` positions.
  uint64_t step_bytes(int64_t n_kv) const;
  // FLOPs of a prefill of `n_prompt` tokens into an empty cache: 2 * params per token for the
  // layer matrices, causal attention (QK^T and PV, window-aware), and the last token's lm_head.
  double prefill_flops(int64_t n_prompt, const ModelConfig& c) const;
};

Traffic count_traffic(const std::vector<const PackReader*>& ranks, DType kv_dtype);

}  // namespace shardlm::bench
