// Vulkan instance and device: loading the loader, enumerating physical devices (the device
// listing behind `--device N`), checking what shardlm needs (Vulkan 1.2, bufferDeviceAddress,
// shaderInt64, a compute queue) and what it can use when present (subgroup arithmetic,
// 16-bit storage, timestamps), and creating one logical device with one compute queue.
// Not memory, pipelines or command buffers (vk_memory.h, vk_pipelines.h, vk_stream.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend/vulkan/vk_api.h"
#include "runtime/backend/vulkan/vulkan_options.h"

namespace shardlm {

struct VulkanDeviceInfo {
  int index = 0;
  std::string name;         // "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)"
  std::string type;         // "discrete-gpu", "integrated-gpu", "virtual-gpu", "cpu", "other"
  std::string api_version;  // "1.3.230"
  std::string driver;       // driver name and info, when the driver reports them
  uint32_t vendor_id = 0, device_id = 0;
  uint64_t device_local_bytes = 0;  // size of the largest device-local heap
  uint32_t subgroup_size = 0;
  bool subgroup_arithmetic = false;  // in compute shaders
  bool storage_16bit = false;        // storageBuffer16BitAccess
  bool cooperative_matrix = false;   // VK_KHR_cooperative_matrix or VK_NV_cooperative_matrix
  bool timestamps = false;
  double timestamp_period_ns = 0;
  bool usable = false;         // meets shardlm's requirements
  std::string why_not_usable;  // when !usable
};

namespace vk {

class Instance {
 public:
  // Throws Error(kBackend) "vulkan backend not available: ..." without a loader, without a
  // driver (no physical device) or when the loader's Vulkan is older than 1.2.
  explicit Instance(const std::string& loader_path);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  const VkApi& api() const { return api_; }
  VkInstance handle() const { return instance_; }
  int device_count() const { return static_cast<int>(physical_.size()); }
  VkPhysicalDevice physical(int index) const { return physical_.at(static_cast<size_t>(index)); }
  VulkanDeviceInfo describe(int index) const;

 private:
  VkApi api_;
  VkInstance instance_ = VK_NULL_HANDLE;
  std::vector<VkPhysicalDevice> physical_;
};

// One logical device with one compute queue, features enabled as options allow.
class Device {
 public:
  // Throws Error(kInvalidArg) for an index that does not exist (listing the devices) and
  // Error(kBackend) for a device that lacks a requirement (naming it).
  Device(std::unique_ptr<Instance> instance, const VulkanOptions& options);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const VkDeviceApi& fn() const { return fn_; }
  VkDevice handle() const { return device_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return queue_family_; }
  const VulkanDeviceInfo& info() const { return info_; }
  const VkPhysicalDeviceMemoryProperties& memory() const { return memory_; }
  const VkPhysicalDeviceLimits& limits() const { return limits_; }
  bool use_subgroup_ops() const { return use_subgroup_; }
  bool use_16bit_storage() const { return use_16bit_; }
  bool timestamps() const { return timestamps_; }
  uint32_t timestamp_valid_bits() const { return timestamp_bits_; }

 private:
  std::unique_ptr<Instance> instance_;
  VulkanDeviceInfo info_;
  VkPhysicalDeviceMemoryProperties memory_{};
  VkPhysicalDeviceLimits limits_{};
  VkDeviceApi fn_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  bool use_subgroup_ = false, use_16bit_ = false, timestamps_ = false;
  uint32_t timestamp_bits_ = 0;
};

}  // namespace vk

// Every Vulkan device the loader reports, usable or not. Throws like vk::Instance when Vulkan
// is not available at all.
std::vector<VulkanDeviceInfo> list_vulkan_devices(const std::string& loader = "libvulkan.so.1");
// One line per device: "0: llvmpipe (...) [cpu, Vulkan 1.3.230, 8 GiB, subgroup 8, ...]".
std::string format_vulkan_devices(const std::vector<VulkanDeviceInfo>& devices);

}  // namespace shardlm
