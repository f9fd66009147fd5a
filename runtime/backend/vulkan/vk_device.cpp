// Instance creation, device discovery and logical-device creation.
#include "runtime/backend/vulkan/vk_device.h"

#include <cstring>
#include <sstream>

#include "runtime/core/status.h"

namespace shardlm {
namespace vk {

namespace {

std::string version_string(uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) +
         "." + std::to_string(VK_API_VERSION_PATCH(v));
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return "discrete-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return "integrated-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return "virtual-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return "cpu";
    default:
      return "other";
  }
}

bool has_extension(const VkApi& api, VkPhysicalDevice pd, const char* name) {
  uint32_t n = 0;
  api.EnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> ext(n);
  api.EnumerateDeviceExtensionProperties(pd, nullptr, &n, ext.data());
  for (const auto& e : ext) {
    if (std::strcmp(e.extensionName, name) == 0) return true;
  }
  return false;
}

// The first queue family with compute, preferring one that also has timestamps.
int compute_family(const VkApi& api, VkPhysicalDevice pd, uint32_t* timestamp_bits) {
  uint32_t n = 0;
  api.GetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
  std::vector<VkQueueFamilyProperties> q(n);
  api.GetPhysicalDeviceQueueFamilyProperties(pd, &n, q.data());
  int best = -1;
  for (uint32_t i = 0; i < n; ++i) {
    if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) == 0) continue;
    if (best < 0 ||
        (q[static_cast<size_t>(best)].timestampValidBits == 0 && q[i].timestampValidBits > 0)) {
      best = static_cast<int>(i);
    }
  }
  if (best >= 0 && timestamp_bits)
    *timestamp_bits = q[static_cast<size_t>(best)].timestampValidBits;
  return best;
}

}  // namespace

Instance::Instance(const std::string& loader_path) {
  load_library(api_, loader_path);
  try {
    uint32_t version = VK_API_VERSION_1_0;
    if (api_.EnumerateInstanceVersion) api_.EnumerateInstanceVersion(&version);
    if (version < VK_API_VERSION_1_2) {
      fail(StatusCode::kBackend, "vulkan backend not available: the loader supports Vulkan " +
                                     version_string(version) + ", shardlm needs 1.2");
    }
    auto app = make<VkApplicationInfo>(VK_STRUCTURE_TYPE_APPLICATION_INFO);
    app.pApplicationName = "shardlm";
    app.pEngineName = "shardlm";
    app.apiVersion = VK_API_VERSION_1_2;
    auto ci = make<VkInstanceCreateInfo>(VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO);
    ci.pApplicationInfo = &app;
    const VkResult r = api_.CreateInstance(&ci, nullptr, &instance_);
    if (r != VK_SUCCESS) {
      fail(StatusCode::kBackend, std::string("vulkan backend not available: vkCreateInstance: ") +
                                     result_name(r) + " (no Vulkan driver installed?)");
    }
    load_instance_functions(api_, instance_);
    uint32_t n = 0;
    check(api_.EnumeratePhysicalDevices(instance_, &n, nullptr), "vkEnumeratePhysicalDevices");
    physical_.resize(n);
    check(api_.EnumeratePhysicalDevices(instance_, &n, physical_.data()),
          "vkEnumeratePhysicalDevices");
    physical_.resize(n);
    if (physical_.empty()) {
      fail(StatusCode::kBackend,
           "vulkan backend not available: no Vulkan device found (loader " + loader_path +
               "; is a driver installed? VK_DRIVER_FILES / VK_ICD_FILENAMES select drivers)");
    }
  } catch (...) {
    if (instance_ != VK_NULL_HANDLE && api_.DestroyInstance)
      api_.DestroyInstance(instance_, nullptr);
    instance_ = VK_NULL_HANDLE;
    unload_library(api_);
    throw;
  }
}

Instance::~Instance() {
  if (instance_ != VK_NULL_HANDLE) api_.DestroyInstance(instance_, nullptr);
  unload_library(api_);
}

VulkanDeviceInfo Instance::describe(int index) const {
  VkPhysicalDevice pd = physical(index);
  VulkanDeviceInfo info;
  info.index = index;

  auto driver =
      make<VkPhysicalDeviceDriverProperties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES);
  auto sub = make<VkPhysicalDeviceSubgroupProperties>(
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES);
  sub.pNext = &driver;
  auto props = make<VkPhysicalDeviceProperties2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2);
  props.pNext = &sub;
  VkPhysicalDeviceProperties base{};
  api_.GetPhysicalDeviceProperties(pd, &base);
  const bool v12 = base.apiVersion >= VK_API_VERSION_1_2;
  if (!v12) props.pNext = nullptr;  // the 1.1/1.2 structures need a 1.2 device
  api_.GetPhysicalDeviceProperties2(pd, &props);
  const VkPhysicalDeviceProperties& p = props.properties;
  info.name = p.deviceName;
  info.type = type_name(p.deviceType);
  info.api_version = version_string(p.apiVersion);
  info.vendor_id = p.vendorID;
  info.device_id = p.deviceID;
  if (v12) {
    info.driver = std::string(driver.driverName);
    if (driver.driverInfo[0]) info.driver += std::string(" ") + driver.driverInfo;
    info.subgroup_size = sub.subgroupSize;
    info.subgroup_arithmetic = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                               (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  }

  VkPhysicalDeviceMemoryProperties mem{};
  api_.GetPhysicalDeviceMemoryProperties(pd, &mem);
  for (uint32_t i = 0; i < mem.memoryHeapCount; ++i) {
    if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) {
      info.device_local_bytes =
          std::max<uint64_t>(info.device_local_bytes, mem.memoryHeaps[i].size);
    }
  }

  auto f12 =
      make<VkPhysicalDeviceVulkan12Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
  auto f11 =
      make<VkPhysicalDeviceVulkan11Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
  f11.pNext = &f12;
  auto f = make<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
  if (v12) f.pNext = &f11;
  api_.GetPhysicalDeviceFeatures2(pd, &f);
  info.storage_16bit = v12 && f11.storageBuffer16BitAccess;
  info.cooperative_matrix = has_extension(api_, pd, "VK_KHR_cooperative_matrix") ||
                            has_extension(api_, pd, "VK_NV_cooperative_matrix");

  uint32_t ts_bits = 0;
  const int family = compute_family(api_, pd, &ts_bits);
  info.timestamps = ts_bits > 0 && p.limits.timestampPeriod > 0;
  info.timestamp_period_ns = p.limits.timestampPeriod;

  if (!v12) {
    info.why_not_usable = "Vulkan " + info.api_version + " device, shardlm needs 1.2";
  } else if (!f12.bufferDeviceAddress) {
    info.why_not_usable = "no bufferDeviceAddress";
  } else if (!f.features.shaderInt64) {
    info.why_not_usable = "no shaderInt64";
  } else if (family < 0) {
    info.why_not_usable = "no compute queue";
  }
  info.usable = info.why_not_usable.empty();
  return info;
}

Device::Device(std::unique_ptr<Instance> instance, const VulkanOptions& options)
    : instance_(std::move(instance)) {
  const VkApi& api = instance_->api();
  const int n = instance_->device_count();
  if (options.device < 0 || options.device >= n) {
    std::vector<VulkanDeviceInfo> all;
    for (int i = 0; i < n; ++i) all.push_back(instance_->describe(i));
    fail(StatusCode::kInvalidArg, "vulkan device " + std::to_string(options.device) +
                                      " does not exist; devices:\n" + format_vulkan_devices(all));
  }
  info_ = instance_->describe(options.device);
  if (!info_.usable) {
    fail(StatusCode::kBackend, "vulkan device " + std::to_string(options.device) + " (" +
                                   info_.name + ") cannot run shardlm: " + info_.why_not_usable);
  }
  VkPhysicalDevice pd = instance_->physical(options.device);
  api.GetPhysicalDeviceMemoryProperties(pd, &memory_);
  VkPhysicalDeviceProperties props{};
  api.GetPhysicalDeviceProperties(pd, &props);
  limits_ = props.limits;
  queue_family_ = static_cast<uint32_t>(compute_family(api, pd, &timestamp_bits_));
  timestamps_ = info_.timestamps;
  use_subgroup_ = info_.subgroup_arithmetic && options.allow_subgroup_ops;
  use_16bit_ = info_.storage_16bit &&
               (options.storage_16bit > 0 || (options.storage_16bit < 0 && info_.type != "cpu"));

  auto f12 =
      make<VkPhysicalDeviceVulkan12Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES);
  f12.bufferDeviceAddress = VK_TRUE;
  auto f11 =
      make<VkPhysicalDeviceVulkan11Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES);
  f11.storageBuffer16BitAccess = use_16bit_ ? VK_TRUE : VK_FALSE;
  f11.pNext = &f12;
  auto features = make<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
  features.features.shaderInt64 = VK_TRUE;
  features.pNext = &f11;

  const float priority = 1.0f;
  auto qci = make<VkDeviceQueueCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO);
  qci.queueFamilyIndex = queue_family_;
  qci.queueCount = 1;
  qci.pQueuePriorities = &priority;
  auto dci = make<VkDeviceCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO);
  dci.pNext = &features;
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &qci;
  check(api.CreateDevice(pd, &dci, nullptr, &device_), "vkCreateDevice");
  try {
    load_device_functions(api, device_, fn_);
  } catch (...) {
    reinterpret_cast<PFN_vkDestroyDevice>(api.GetDeviceProcAddr(device_, "vkDestroyDevice"))(
        device_, nullptr);
    throw;
  }
  fn_.GetDeviceQueue(device_, queue_family_, 0, &queue_);
}

Device::~Device() {
  if (device_ != VK_NULL_HANDLE) {
    fn_.DeviceWaitIdle(device_);
    fn_.DestroyDevice(device_, nullptr);
  }
}

}  // namespace vk

std::vector<VulkanDeviceInfo> list_vulkan_devices(const std::string& loader) {
  vk::Instance instance(loader);
  std::vector<VulkanDeviceInfo> out;
  for (int i = 0; i < instance.device_count(); ++i) out.push_back(instance.describe(i));
  return out;
}

std::string format_vulkan_devices(const std::vector<VulkanDeviceInfo>& devices) {
  std::ostringstream s;
  for (const VulkanDeviceInfo& d : devices) {
    s << d.index << ": " << d.name << " [" << d.type << ", Vulkan " << d.api_version << ", "
      << (d.device_local_bytes >> 20) << " MiB device-local";
    if (!d.driver.empty()) s << ", " << d.driver;
    s << ", subgroup " << d.subgroup_size << (d.subgroup_arithmetic ? " arith" : "")
      << (d.storage_16bit ? ", 16-bit storage" : "")
      << (d.cooperative_matrix ? ", cooperative matrix" : "")
      << (d.timestamps ? ", timestamps" : "") << "]";
    if (!d.usable) s << " NOT USABLE: " << d.why_not_usable;
    s << "\n";
  }
  return s.str();
}

}  // namespace shardlm
