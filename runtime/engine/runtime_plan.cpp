// plan_for_device(): per-rank memory plans for the engine's real device.
#include "runtime/engine/runtime_plan.h"

#include <unistd.h>

#include "runtime/core/status.h"

namespace shardlm {

uint64_t host_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

std::vector<MemoryPlan> plan_for_device(const std::vector<const PackReader*>& ranks,
                                        const RuntimePlanOptions& options) {
  std::vector<MemoryPlan> plans;
  if (ranks.empty()) return plans;
  const uint64_t tp = ranks.size();
  for (const PackReader* pack : ranks) {
    const MemoryPlan& packed = pack->plan();
    PlanOptions o;
    if (options.backend == "cpu" && host_memory_bytes() > 0) {
      o.target = tp > 1 ? "host memory / " + std::to_string(tp) + " ranks (cpu backend)"
                        : "host memory (cpu backend)";
      o.device_total_bytes = host_memory_bytes() / tp;
    } else {  // a backend that does not report its memory: the pack's own target
      o.target = packed.target + " (as packed)";
      o.device_total_bytes = packed.device_total_bytes;
    }
    o.mem_fraction = options.mem_fraction > 0  ? options.mem_fraction
                     : packed.mem_fraction > 0 ? packed.mem_fraction
                                               : PlanOptions{}.mem_fraction;
    if (!(o.mem_fraction > 0 && o.mem_fraction <= 1)) {
      fail(StatusCode::kInvalidArg,
           "memory fraction must be in (0, 1], got " + std::to_string(o.mem_fraction));
    }
    o.n_ctx = options.n_ctx;
    o.max_batch = 1;
    o.max_batch_tokens = options.max_batch_tokens;
    o.kv_dtype = options.kv_dtype;
    o.reserve_bytes = packed.reserve_bytes;
    uint64_t weights = 0;
    for (const PackTensor& t : pack->tensors()) weights += t.nbytes;
    plans.push_back(compute_memory_plan(pack->config(), pack->parallel(), weights, o));
  }
  return plans;
}

}  // namespace shardlm
