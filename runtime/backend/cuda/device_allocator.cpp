// DeviceAllocator: budget check, cudaMalloc, cudaFree.
#include "runtime/backend/cuda/device_allocator.h"

#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_device.h"
#include "runtime/core/status.h"

namespace shardlm {

void* DeviceAllocator::allocate(size_t bytes, const std::string& what) {
  if (bytes == 0) bytes = 1;  // a distinct pointer for empty tensors
  {
    std::lock_guard<std::mutex> lock(mu_);
    budget_.reserve(bytes, what);
  }
  CudaDeviceGuard guard(device_);
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaSuccess) return p;
  cudaGetLastError();
  size_t free_bytes = 0, total = 0;
  cudaMemGetInfo(&free_bytes, &total);
  std::lock_guard<std::mutex> lock(mu_);
  budget_.release(bytes);
  if (e == cudaErrorMemoryAllocation) {
    fail(StatusCode::kOom, budget_.malloc_failure(bytes, what, free_bytes));
  }
  cuda_check(e, "cudaMalloc of " + std::to_string(bytes) + " bytes for " + what);
  return nullptr;  // unreachable
}

void DeviceAllocator::free(void* p, size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes == 0) bytes = 1;
  int previous = -1;
  cudaGetDevice(&previous);
  if (previous != device_) cudaSetDevice(device_);
  cudaFree(p);
  cudaGetLastError();
  if (previous >= 0 && previous != device_) cudaSetDevice(previous);
  std::lock_guard<std::mutex> lock(mu_);
  budget_.release(bytes);
}

uint64_t DeviceAllocator::budget_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return budget_.budget();
}

uint64_t DeviceAllocator::used_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return budget_.used();
}

uint64_t DeviceAllocator::peak_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return budget_.peak();
}

}  // namespace shardlm
