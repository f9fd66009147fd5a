// --activations / --backend-settings for the programs built on EngineOptions.
#include "apps/common/compute_flags.h"

#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/core/status.h"

namespace shardlm::apps {

void apply_compute_flags(const ComputeFlags& flags, EngineOptions& eo) {
  const auto a = parse_matmul_activations(flags.activations);
  if (!a) {
    fail(StatusCode::kInvalidArg,
         "--activations " + flags.activations + ": expected auto, f32 or bf16");
  }
  eo.activations = *a;
  eo.backend_settings = parse_backend_settings(flags.backend_settings);
}

std::string describe_compute(const EngineOptions& eo) {
  if (eo.backend == "cpu") {
    BackendOptions bo;
    bo.activations = eo.activations;
    bo.settings = eo.backend_settings;
    return cpu_matmul_path(bo);
  }
  return eo.backend + ", " + matmul_activations_name(eo.activations) + " activations";
}

}  // namespace shardlm::apps
