// shardlm-vulkan-devices: lists the Vulkan devices the loader reports, with what shardlm needs
// and uses on each (the indices SHARDLM_VULKAN_DEVICES, EngineOptions::devices and
// `--device N` of the benchmarks refer to). Exit status 2 when Vulkan is not available.
#include <cstdio>

#include "runtime/backend/vulkan/vk_device.h"
#include "runtime/core/status.h"

int main() {
  try {
    std::printf("%s", shardlm::format_vulkan_devices(shardlm::list_vulkan_devices()).c_str());
    return 0;
  } catch (const shardlm::Error& e) {
    std::fprintf(stderr, "shardlm-vulkan-devices: %s\n", e.what());
    return 2;
  }
}
