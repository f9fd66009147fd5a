// The memory plan recomputed at load time for the device the engine really runs on (DESIGN.md:
// "stored in the pack, re-checked by the runtime against the real device"). The packer's plan
// was made for a target it was told about; this one uses the backend's memory, the engine's
// n_ctx and prefill chunk, its KV dtype, and the caller's memory fraction.
// The cpu backend runs every rank in one process, so each rank is planned against an equal
// share (1 / tp) of the host's physical memory. Pure arithmetic over formats/memory_plan.h; no
// allocation happens here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/pack_reader.h"

namespace shardlm {

struct RuntimePlanOptions {
  std::string backend = "cpu";
  double mem_fraction = 0;  // 0 = the fraction the pack was planned with
  int64_t n_ctx = 0;        // context length (KV tokens per sequence)
  int64_t max_batch_tokens = 256;
  DType kv_dtype = DType::kF32;  // the KV element type the engine allocates
};

// Physical memory of this host in bytes (sysconf); 0 when unknown.
uint64_t host_memory_bytes();

// One plan per rank (index = rank). `ranks` are the opened rank files of one pack set.
// Throws Error(kInvalidArg) for a fraction outside (0, 1].
std::vector<MemoryPlan> plan_for_device(const std::vector<const PackReader*>& ranks,
                                        const RuntimePlanOptions& options);

}  // namespace shardlm
