// The compute settings shardlm-bench and shardlm-run take (--activations, --backend-settings):
// parsed into EngineOptions, and described for the report ("avx512, bf16 activations
// (avx512-bf16)"). Not the other flags (main.cpp) and not a benchmark.
#pragma once

#include <string>

#include "runtime/engine/engine.h"

namespace shardlm::apps {

struct ComputeFlags {
  std::string activations = "auto";  // auto | f32 | bf16
  std::string backend_settings;     // key=value,key=value
};

// Sets eo.activations and eo.backend_settings. Throws Error(kInvalidArg) naming a bad value.
void apply_compute_flags(const ComputeFlags& flags, EngineOptions& eo);

// What the matmuls of `eo`'s backend will run: the cpu ISA level and activation mode, or the
// backend name and activation mode.
std::string describe_compute(const EngineOptions& eo);

}  // namespace shardlm::apps
