// Allocation: buffer + memory + device address + optional mapping + reserved handle range.
#include "runtime/backend/vulkan/vk_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>

#include "runtime/core/status.h"

namespace shardlm::vk {

namespace {

std::string mib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// Index of the memory type to use, or -1. Required flags must all be present; among those,
// the first type with all preferred flags wins, else the first with the required ones.
int pick_type(const VkPhysicalDeviceMemoryProperties& mem, uint32_t type_bits,
              VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) {
  int fallback = -1;
  for (uint32_t i = 0; i < mem.memoryTypeCount; ++i) {
    if ((type_bits & (1u << i)) == 0) continue;
    const VkMemoryPropertyFlags f = mem.memoryTypes[i].propertyFlags;
    if ((f & required) != required) continue;
    if ((f & preferred) == preferred) return static_cast<int>(i);
    if (fallback < 0) fallback = static_cast<int>(i);
  }
  return fallback;
}

}  // namespace

Allocation::Allocation(const Device& device, size_t bytes, MemoryUse use, bool allow_map,
                       const char* what)
    : device_(device), size_(bytes) {
  const VkDeviceApi& fn = device.fn();
  const VkDeviceSize vk_size = (std::max<size_t>(bytes, 1) + 15) & ~size_t{15};
  auto bci = make<VkBufferCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO);
  bci.size = vk_size;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
              VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  const std::string label = std::string(what) + " (" + mib(bytes) + ")";
  check(fn.CreateBuffer(device.handle(), &bci, nullptr, &buffer_),
        ("vkCreateBuffer for " + label).c_str());
  try {
    VkMemoryRequirements req{};
    fn.GetBufferMemoryRequirements(device.handle(), buffer_, &req);
    constexpr VkMemoryPropertyFlags kHost =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int type = -1;
    switch (use) {
      case MemoryUse::kDevice:
        type =
            pick_type(device.memory(), req.memoryTypeBits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        break;
      case MemoryUse::kUpload:
        type = pick_type(device.memory(), req.memoryTypeBits, kHost,
                         kHost | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        break;
      case MemoryUse::kReadback:
        type = pick_type(device.memory(), req.memoryTypeBits, kHost,
                         kHost | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        break;
    }
    if (type < 0) fail(StatusCode::kBackend, "vulkan: no suitable memory type for " + label);
    auto flags = make<VkMemoryAllocateFlagsInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO);
    flags.flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT;
    auto mai = make<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
    mai.pNext = &flags;
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = static_cast<uint32_t>(type);
    const VkResult r = fn.AllocateMemory(device.handle(), &mai, nullptr, &memory_);
    if (r != VK_SUCCESS) {
      check(r, ("vkAllocateMemory of " + label + " on " + device.info().name).c_str());
    }
    check(fn.BindBufferMemory(device.handle(), buffer_, memory_, 0), "vkBindBufferMemory");
    auto bai = make<VkBufferDeviceAddressInfo>(VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO);
    bai.buffer = buffer_;
    address_ = fn.GetBufferDeviceAddress(device.handle(), &bai);

    const VkMemoryPropertyFlags f =
        device.memory().memoryTypes[static_cast<uint32_t>(type)].propertyFlags;
    const bool mappable = (f & kHost) == kHost;
    if (mappable && (allow_map || use != MemoryUse::kDevice)) {
      void* p = nullptr;
      check(fn.MapMemory(device.handle(), memory_, 0, VK_WHOLE_SIZE, 0, &p), "vkMapMemory");
      mapped_ = static_cast<uint8_t*>(p);
    }

    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    reserved_ = (std::max<size_t>(bytes, 1) + page - 1) / page * page;
    void* h =
        mmap(nullptr, reserved_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (h == MAP_FAILED) fail(StatusCode::kOom, "vulkan: cannot reserve handle range for " + label);
    handle_ = static_cast<uint8_t*>(h);
  } catch (...) {
    if (mapped_) fn.UnmapMemory(device.handle(), memory_);
    if (memory_ != VK_NULL_HANDLE) fn.FreeMemory(device.handle(), memory_, nullptr);
    fn.DestroyBuffer(device.handle(), buffer_, nullptr);
    throw;
  }
}

Allocation::~Allocation() {
  const VkDeviceApi& fn = device_.fn();
  if (handle_) munmap(handle_, reserved_);
  if (mapped_) fn.UnmapMemory(device_.handle(), memory_);
  fn.DestroyBuffer(device_.handle(), buffer_, nullptr);
  fn.FreeMemory(device_.handle(), memory_, nullptr);
}

void AddressMap::add(Allocation* a) {
  by_handle_[reinterpret_cast<uintptr_t>(a->handle())] = a;
}

void AddressMap::remove(Allocation* a) {
  by_handle_.erase(reinterpret_cast<uintptr_t>(a->handle()));
}

AddressMap::Resolved AddressMap::find(const void* p) const {
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  auto it = by_handle_.upper_bound(u);
  if (it == by_handle_.begin()) return {};
  --it;
  const uintptr_t base = it->first;
  if (u - base > it->second->size()) return {};
  return {it->second, static_cast<size_t>(u - base)};
}

}  // namespace shardlm::vk
