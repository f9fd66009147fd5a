// Options of one Vulkan backend instance (one rank). The registry's factory fills them from
// BackendOptions; tests and tools can set every field. Plain data, no Vulkan types.
#pragma once

#include <cstddef>
#include <string>

namespace shardlm {

struct VulkanOptions {
  int device = 0;                         // index into list_vulkan_devices()
  std::string loader = "libvulkan.so.1";  // the Vulkan loader library dlopen()ed at creation
  // Feature switches: false forces the fallback even where the device has the feature, so the
  // fallbacks are tested on devices (lavapipe) that have everything.
  bool allow_subgroup_ops = true;  // subgroup arithmetic in reductions
  // 16-bit weight loads through 16-bit storage: 1 where the device has it, 0 never (32-bit
  // words, unpacked), -1 auto = GPUs that have it, not CPU devices (on lavapipe the 32-bit-word
  // loads measured 1.7x less CPU: docs/vulkan.md).
  int storage_16bit = -1;
  bool allow_host_visible = true;  // false: never map device memory, always stage copies
  // Split-K decode attention: key blocks spread over this many workgroups per (head, token),
  // then merged. -1 auto: 16 on GPUs when n_tokens * n_head < 1024, else 1 (CPU devices: 1).
  int attention_splits = -1;
  bool reuse_command_buffers = true;        // false: re-record every submission (for comparison)
  std::string pipeline_cache_path;          // load/save the VkPipelineCache here ("" = memory only)
  size_t arena_bytes = size_t{4} << 20;     // per-op parameter blocks and small uploads
  size_t staging_bytes = size_t{32} << 20;  // large uploads/readbacks, in chunks of this size
  int command_cache_entries = 64;           // recorded command buffers kept for reuse (LRU)
};

}  // namespace shardlm
