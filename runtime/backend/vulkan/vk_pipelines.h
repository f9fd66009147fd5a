// Compute pipelines of the embedded shader variants (kernels/vulkan/shader_table.h), created on
// first use through one VkPipelineCache (optionally loaded from and saved to a file, so a second
// run skips the driver's shader compilation) and one pipeline layout: no descriptor sets, one
// 8-byte push constant holding the device address of the op's parameter block.
// Not the ops (vulkan_backend.cpp) and not command recording (vk_stream.h).
#pragma once

#include <string>
#include <unordered_map>

#include "runtime/backend/vulkan/vk_device.h"

namespace shardlm::vk {

class Pipelines {
 public:
  // `cache_path` may be empty (in-memory cache only); unreadable or foreign cache data is ignored.
  Pipelines(const Device& device, std::string cache_path);
  ~Pipelines();  // saves the cache when a path was given
  Pipelines(const Pipelines&) = delete;
  Pipelines& operator=(const Pipelines&) = delete;

  // The pipeline of shader variant `name`; throws Error(kInternal) for an unknown variant.
  VkPipeline get(const std::string& name);
  VkPipelineLayout layout() const { return layout_; }
  size_t created() const { return pipelines_.size(); }
  // Writes the cache data to the path given at construction (no-op without one).
  void save_cache() const;

 private:
  const Device& device_;
  std::string cache_path_;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  std::unordered_map<std::string, VkPipeline> pipelines_;
};

}  // namespace shardlm::vk
