// Device memory for the Vulkan backend: one VkBuffer per allocation with its own VkDeviceMemory
// (a plain allocator: the Vulkan Memory Allocator is not packaged for Debian 12), its 64-bit
// device address (shaders reach every tensor through buffer device addresses), its host
// mapping when the memory type is host-visible and coherent (UMA devices, lavapipe), and an
// opaque host-side handle: a PROT_NONE reservation of the same size whose addresses are what
// Tensor::data holds. Slicing a tensor offsets the handle; AddressMap turns any such pointer
// back into (allocation, offset). Dereferencing a handle on the host faults at once, so a
// device tensor mistaken for host memory never reads garbage silently.
// Not the ops, not the command stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "runtime/backend/vulkan/vk_device.h"

namespace shardlm::vk {

enum class MemoryUse : uint8_t {
  kDevice,   // weights, KV cache, activations: device-local
  kUpload,   // parameter arena and upload staging: host-visible + coherent, device-local if any
  kReadback  // readback staging: host-visible + coherent, host-cached if any
};

class Allocation {
 public:
  // Throws Error(kOom) naming `what` and the size when the device is out of memory.
  Allocation(const Device& device, size_t bytes, MemoryUse use, bool allow_map, const char* what);
  ~Allocation();
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;

  VkBuffer buffer() const { return buffer_; }
  VkDeviceAddress address() const { return address_; }
  size_t size() const { return size_; }        // bytes requested
  uint8_t* mapped() const { return mapped_; }  // null when not host-visible
  uint8_t* handle() const { return handle_; }  // opaque base for Tensor::data
  bool host_visible() const { return mapped_ != nullptr; }

 private:
  const Device& device_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  VkDeviceAddress address_ = 0;
  size_t size_ = 0;
  size_t reserved_ = 0;
  uint8_t* mapped_ = nullptr;
  uint8_t* handle_ = nullptr;
};

// Handle pointer -> allocation. One per backend; not thread-safe (a rank owns its backend).
class AddressMap {
 public:
  struct Resolved {
    Allocation* alloc = nullptr;  // null when the pointer is not in any allocation
    size_t offset = 0;
  };
  void add(Allocation* a);
  void remove(Allocation* a);
  // Pointers from handle() to handle() + size() (inclusive: an empty slice at the end).
  Resolved find(const void* p) const;

 private:
  std::map<uintptr_t, Allocation*> by_handle_;
};

}  // namespace shardlm::vk
