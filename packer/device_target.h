// Where the memory plan's device size comes from: --gpu-mem, a named device profile, the GPU
// nvidia-smi reports on this machine, or (last resort) this host's physical memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shardlm {

struct DeviceTarget {
  std::string description;
  uint64_t total_bytes = 0;
};

// Named profiles ("h100", "h200", "a100-80g", ...): memory as nvidia-smi reports it.
std::optional<DeviceTarget> device_profile(const std::string& name);
std::vector<std::string> device_profile_names();
// First GPU reported by `nvidia-smi`, if any.
std::optional<DeviceTarget> detect_gpu();
DeviceTarget host_memory();

}  // namespace shardlm
