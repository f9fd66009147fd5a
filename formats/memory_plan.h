// The memory-fraction calculator: how much of a device one rank's weights, workspace and KV
// cache take, and how many tokens of KV fit. The packer stores the plan in each rank file; the
// runtime recomputes it against the real device. Pure arithmetic (docs/memory-plan.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/model_config.h"
#include "runtime/core/dtype.h"

namespace shardlm {

struct PlanOptions {
  std::string target = "host memory";  // what device_total_bytes describes
  uint64_t device_total_bytes = 0;
  double mem_fraction = 0.85;
  int64_t n_ctx = 0;                // 0: the model's max_position_embeddings
  int64_t max_batch = 1;            // concurrent sequences
  int64_t max_batch_tokens = 2048;  // tokens in one forward (prefill chunk)
  DType kv_dtype = DType::kBF16;
  uint64_t reserve_bytes = 512ull << 20;  // runtime context, library workspaces, fragmentation
};

struct MemoryPlan {
  std::string target;
  uint64_t device_total_bytes = 0;
  double mem_fraction = 0;
  uint64_t budget_bytes = 0;
  uint64_t weight_bytes = 0;
  uint64_t workspace_bytes = 0;
  uint64_t reserve_bytes = 0;
  uint64_t kv_bytes_per_token = 0;
  int64_t kv_tokens = 0;
  DType kv_dtype = DType::kBF16;
  int64_t n_ctx = 0;
  int64_t max_batch = 0;
  int64_t max_batch_tokens = 0;
  bool fits = false;

  // Bytes left for the KV cache after weights, workspace and reserve (0 if negative).
  uint64_t kv_budget_bytes() const;
  // Why it does not fit, with both numbers and what to change; empty when it fits.
  std::string shortfall_message() const;
};

// KV bytes per token for one rank: 2 (K and V) * n_layer * n_head_kv_local * head_dim * size.
uint64_t kv_bytes_per_token(const ModelConfig& c, const ParallelLayout& p, DType kv_dtype);
// Activation workspace for one rank (f32 activations, logits, communication buffers).
uint64_t workspace_bytes(const ModelConfig& c, const ParallelLayout& p, int64_t max_batch_tokens,
                         int64_t max_batch);

MemoryPlan compute_memory_plan(const ModelConfig& c, const ParallelLayout& p,
                               uint64_t weight_bytes, const PlanOptions& o);

// Human-readable table of one plan per rank.
std::string format_plan_table(const std::vector<MemoryPlan>& per_rank);
// JSON text of one plan per rank.
std::string plan_to_json(const std::vector<MemoryPlan>& per_rank);

// "1.50 GiB", "512.0 MiB", "4.0 KiB", "12 B".
std::string format_bytes(uint64_t bytes);
// Parses "80GiB", "80G", "24GB", "1.5TiB", "4096" (bytes). Decimal suffixes (GB) are 10^9,
// binary (GiB, G) 2^30. Throws Error(kInvalidArg) naming `what` on bad input.
uint64_t parse_bytes(const std::string& text, const std::string& what);

}  // namespace shardlm
