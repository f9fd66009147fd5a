// Budgeted device allocation for one cuda rank: every cudaMalloc goes through the rank's
// DeviceMemoryBudget (memory_budget.h), so running out is Error(kOom) with both numbers.
// Shared (shared_ptr) between the backend and the buffers it hands out, so a buffer that
// outlives its backend (a KV cache kept by the caller) still frees on the right device.
// Thread-safe: the engine may allocate a KV cache from another thread than the rank's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "runtime/backend/cuda/memory_budget.h"

namespace shardlm {

class DeviceAllocator {
 public:
  DeviceAllocator(int device, DeviceMemoryBudget budget)
      : device_(device), budget_(std::move(budget)) {}

  int device() const { return device_; }
  // cudaMalloc on this allocator's device (made current for the call). Throws Error(kOom).
  void* allocate(size_t bytes, const std::string& what);
  void free(void* p, size_t bytes) noexcept;

  uint64_t budget_bytes() const;
  uint64_t used_bytes() const;
  uint64_t peak_bytes() const;

 private:
  int device_;
  mutable std::mutex mu_;
  DeviceMemoryBudget budget_;
};

}  // namespace shardlm
