// Test helpers shared by the step-engine tests: packing a model directory at a TP size and
// opening an engine with a paged KV pool. Header-only; tests only.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "packer/packer.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"

namespace shardlm {

// Packs `dir` at `tp` under `root`; empty when the model does not split at that tp.
inline std::string pack_at(const std::filesystem::path& dir, const std::filesystem::path& root,
                           int tp) {
  PackOptions po;
  po.model_dir = dir.string();
  po.out_dir = (root / ("tp" + std::to_string(tp))).string();
  po.tp_size = tp;
  try {
    pack_checkpoint(po);
  } catch (const Error& e) {
    if (e.code() == StatusCode::kInvalidArg) return {};
    throw;
  }
  return po.out_dir;
}

inline std::unique_ptr<Engine> open_paged(const std::string& dir, int64_t n_blocks, DType kv_dtype,
                                   int64_t block_size = 16, int64_t n_ctx = 256,
                                   int64_t max_batch_tokens = 64, bool deterministic = false,
                                   MatmulActivations activations = MatmulActivations::kF32,
                                   int n_threads = 2) {
  EngineOptions eo;
  eo.pack_dir = dir;
  eo.n_threads = n_threads;
  eo.n_ctx = n_ctx;
  eo.max_batch_tokens = max_batch_tokens;
  eo.default_sequence = false;
  eo.kv_blocks = n_blocks;
  eo.block_size = block_size;
  eo.kv_dtype = kv_dtype;
  eo.deterministic = deterministic;
  eo.activations = activations;
  return std::make_unique<Engine>(eo);
}

}  // namespace shardlm
