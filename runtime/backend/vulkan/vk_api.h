// The Vulkan entry points shardlm uses, loaded at run time: the loader library (libvulkan.so.1)
// is opened with dlopen and every function is resolved through vkGetInstanceProcAddr /
// vkGetDeviceProcAddr into a VkApi table owned by the caller (no process-wide function pointers,
// unlike volk). A machine without the loader or without a driver therefore still runs every
// other backend, and the Vulkan backend reports "not available" with the reason.
// Not a wrapper around Vulkan objects: see vk_device.h, vk_memory.h, vk_stream.h.
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <string>

namespace shardlm::vk {

#define SHARDLM_VK_INSTANCE_FNS(X)          \
  X(DestroyInstance)                        \
  X(EnumeratePhysicalDevices)               \
  X(GetPhysicalDeviceProperties)            \
  X(GetPhysicalDeviceProperties2)           \
  X(GetPhysicalDeviceFeatures2)             \
  X(GetPhysicalDeviceMemoryProperties)      \
  X(GetPhysicalDeviceQueueFamilyProperties) \
  X(EnumerateDeviceExtensionProperties)     \
  X(CreateDevice)                           \
  X(GetDeviceProcAddr)

#define SHARDLM_VK_DEVICE_FNS(X) \
  X(DestroyDevice)               \
  X(GetDeviceQueue)              \
  X(DeviceWaitIdle)              \
  X(CreateBuffer)                \
  X(DestroyBuffer)               \
  X(GetBufferMemoryRequirements) \
  X(AllocateMemory)              \
  X(FreeMemory)                  \
  X(BindBufferMemory)            \
  X(MapMemory)                   \
  X(UnmapMemory)                 \
  X(GetBufferDeviceAddress)      \
  X(CreateShaderModule)          \
  X(DestroyShaderModule)         \
  X(CreatePipelineLayout)        \
  X(DestroyPipelineLayout)       \
  X(CreateComputePipelines)      \
  X(DestroyPipeline)             \
  X(CreatePipelineCache)         \
  X(DestroyPipelineCache)        \
  X(GetPipelineCacheData)        \
  X(CreateCommandPool)           \
  X(DestroyCommandPool)          \
  X(AllocateCommandBuffers)      \
  X(FreeCommandBuffers)          \
  X(BeginCommandBuffer)          \
  X(EndCommandBuffer)            \
  X(CmdBindPipeline)             \
  X(CmdPushConstants)            \
  X(CmdDispatch)                 \
  X(CmdPipelineBarrier)          \
  X(CmdCopyBuffer)               \
  X(CmdFillBuffer)               \
  X(CmdWriteTimestamp)           \
  X(CmdResetQueryPool)           \
  X(CreateQueryPool)             \
  X(DestroyQueryPool)            \
  X(GetQueryPoolResults)         \
  X(QueueSubmit)                 \
  X(CreateFence)                 \
  X(DestroyFence)                \
  X(WaitForFences)               \
  X(ResetFences)

// One table per VulkanInstance (instance-level and global functions) and one per device.
struct VkApi {
  void* library = nullptr;  // dlopen handle
  PFN_vkGetInstanceProcAddr GetInstanceProcAddr = nullptr;
  PFN_vkCreateInstance CreateInstance = nullptr;
  PFN_vkEnumerateInstanceVersion EnumerateInstanceVersion = nullptr;
#define SHARDLM_VK_DECLARE(name) PFN_vk##name name = nullptr;
  SHARDLM_VK_INSTANCE_FNS(SHARDLM_VK_DECLARE)
};

struct VkDeviceApi {
  SHARDLM_VK_DEVICE_FNS(SHARDLM_VK_DECLARE)
#undef SHARDLM_VK_DECLARE
};

// Opens the loader (`path`, e.g. "libvulkan.so.1") and resolves the global functions.
// Throws Error(kBackend) "vulkan backend not available: cannot load <path> (<dlerror>)".
void load_library(VkApi& api, const std::string& path);
void unload_library(VkApi& api);
// Resolves the instance-level functions; throws Error(kBackend) naming a missing one.
void load_instance_functions(VkApi& api, VkInstance instance);
void load_device_functions(const VkApi& api, VkDevice device, VkDeviceApi& out);

// A zero-initialised Vulkan structure with its sType set.
template <class T>
T make(VkStructureType type) {
  T s{};
  s.sType = type;
  return s;
}

// "VK_ERROR_OUT_OF_DEVICE_MEMORY", ...
const char* result_name(VkResult r);
// Throws Error(kOom) for out-of-memory results, else Error(kBackend), "vulkan: <what>: <result>".
void check(VkResult r, const char* what);

}  // namespace shardlm::vk
