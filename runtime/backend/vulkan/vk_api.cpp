// dlopen-based loading of the Vulkan entry points and VkResult names.
#include "runtime/backend/vulkan/vk_api.h"

#include <dlfcn.h>

#include "runtime/core/status.h"

namespace shardlm::vk {

void load_library(VkApi& api, const std::string& path) {
  dlerror();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    fail(StatusCode::kBackend, "vulkan backend not available: cannot load the Vulkan loader " +
                                   path + " (" + (why ? why : "unknown error") + ")");
  }
  api.library = lib;
  api.GetInstanceProcAddr =
      reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));
  if (api.GetInstanceProcAddr == nullptr) {
    unload_library(api);
    fail(StatusCode::kBackend,
         "vulkan backend not available: " + path + " has no vkGetInstanceProcAddr");
  }
  api.CreateInstance = reinterpret_cast<PFN_vkCreateInstance>(
      api.GetInstanceProcAddr(VK_NULL_HANDLE, "vkCreateInstance"));
  api.EnumerateInstanceVersion = reinterpret_cast<PFN_vkEnumerateInstanceVersion>(
      api.GetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceVersion"));
  if (api.CreateInstance == nullptr) {
    unload_library(api);
    fail(StatusCode::kBackend,
         "vulkan backend not available: " + path + " has no vkCreateInstance");
  }
}

void unload_library(VkApi& api) {
  if (api.library != nullptr) dlclose(api.library);
  api = VkApi{};
}

void load_instance_functions(VkApi& api, VkInstance instance) {
#define SHARDLM_VK_LOAD(name)                                                               \
  api.name = reinterpret_cast<PFN_vk##name>(api.GetInstanceProcAddr(instance, "vk" #name)); \
  if (api.name == nullptr) fail(StatusCode::kBackend, "vulkan: loader lacks vk" #name);
  SHARDLM_VK_INSTANCE_FNS(SHARDLM_VK_LOAD)
#undef SHARDLM_VK_LOAD
}

void load_device_functions(const VkApi& api, VkDevice device, VkDeviceApi& out) {
#define SHARDLM_VK_LOAD(name)                                                           \
  out.name = reinterpret_cast<PFN_vk##name>(api.GetDeviceProcAddr(device, "vk" #name)); \
  if (out.name == nullptr) fail(StatusCode::kBackend, "vulkan: device lacks vk" #name);
  SHARDLM_VK_DEVICE_FNS(SHARDLM_VK_LOAD)
#undef SHARDLM_VK_LOAD
}

const char* result_name(VkResult r) {
  switch (r) {
#define SHARDLM_VK_CASE(x) \
  case x:                  \
    return #x;
    SHARDLM_VK_CASE(VK_SUCCESS)
    SHARDLM_VK_CASE(VK_NOT_READY)
    SHARDLM_VK_CASE(VK_TIMEOUT)
    SHARDLM_VK_CASE(VK_INCOMPLETE)
    SHARDLM_VK_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
    SHARDLM_VK_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    SHARDLM_VK_CASE(VK_ERROR_INITIALIZATION_FAILED)
    SHARDLM_VK_CASE(VK_ERROR_DEVICE_LOST)
    SHARDLM_VK_CASE(VK_ERROR_MEMORY_MAP_FAILED)
    SHARDLM_VK_CASE(VK_ERROR_LAYER_NOT_PRESENT)
    SHARDLM_VK_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
    SHARDLM_VK_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    SHARDLM_VK_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
    SHARDLM_VK_CASE(VK_ERROR_TOO_MANY_OBJECTS)
    SHARDLM_VK_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    SHARDLM_VK_CASE(VK_ERROR_FRAGMENTED_POOL)
    SHARDLM_VK_CASE(VK_ERROR_UNKNOWN)
    SHARDLM_VK_CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
    SHARDLM_VK_CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    SHARDLM_VK_CASE(VK_ERROR_FRAGMENTATION)
    SHARDLM_VK_CASE(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
#undef SHARDLM_VK_CASE
    default:
      return "VkResult(unknown)";
  }
}

void check(VkResult r, const char* what) {
  if (r == VK_SUCCESS) return;
  const StatusCode code = (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
                              ? StatusCode::kOom
                              : StatusCode::kBackend;
  fail(code, std::string("vulkan: ") + what + ": " + result_name(r) + " (" +
                 std::to_string(static_cast<int>(r)) + ")");
}

}  // namespace shardlm::vk
