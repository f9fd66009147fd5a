// The packing pipeline behind `shardlm-pack`: Hugging Face checkpoint directory in, one
// self-contained rank file per tensor-parallel rank out. Library form so tests and other tools
// can pack without spawning the CLI. Throws shardlm::Error with a message naming the file,
// tensor or field on bad input; never leaves a partial pack under a final name.
#pragma once

#include <cstdint>
#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "formats/memory_plan.h"
#include "runtime/core/dtype.h"

namespace shardlm {

struct PackOptions {
  std::string model_dir;            // HF checkpoint directory
  std::string out_dir;              // created if missing
  int tp_size = 1;
  std::optional<DType> dtype;       // weight dtype; default: the checkpoint's
  // Quantize the matrices (DType::kInt8 or kInt4) ahead of time; the embedding and lm_head keep `dtype`
  // (or the checkpoint's) unless quantize_embeddings. Norms and biases stay f32.
  std::optional<DType> quantize;
  bool quantize_embeddings = false;
  PlanOptions plan;                 // memory-plan target (device_total_bytes 0: host memory)
  bool plan_only = false;           // compute and return the plan, write nothing
  bool progress = false;            // draw a progress bar on stderr
  // When set (e.g. by a SIGINT handler), packing stops at the next 8 MiB chunk with
  // Error(kCancelled); the staging folder is removed and the output folder is left as it was.
  const std::atomic<bool>* stop = nullptr;
};

struct PackResult {
  std::vector<std::string> rank_paths;  // final paths, index = rank (empty when plan_only)
  std::vector<MemoryPlan> plans;        // index = rank
  uint64_t bytes_written = 0;
  uint64_t source_bytes = 0;
  double seconds = 0;
};

PackResult pack_checkpoint(const PackOptions& options);

}  // namespace shardlm
