// CUDA runtime plumbing shared by the cuda backend and the CUDA communicators (both sit above
// kernels/cuda): turning CUDA errors into Error(kBackend/kOom/kComm), counting devices without
// throwing when there is no driver (so tests can skip), device properties, and a guard that
// makes a device current on the calling thread. Not the backend (runtime/backend/cuda).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "runtime/core/status.h"

namespace shardlm {

// Throws Error(code, "<what>: <error name> (<description>)") when e is not cudaSuccess. Out of
// memory errors are reported as kOom whatever `code` says.
void cuda_check(cudaError_t e, const std::string& what, StatusCode code = StatusCode::kBackend);

// Visible CUDA devices; 0 when there is no driver or no device, with the reason in *why.
int cuda_device_count(std::string* why = nullptr);

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  uint64_t total_bytes = 0;
  // "0: NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)"
  std::string describe() const;
};
CudaDeviceInfo cuda_device_info(int device);

// Makes `device` current on this thread for the guard's lifetime, then restores the previous.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int device);
  ~CudaDeviceGuard();
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;

 private:
  int previous_ = -1;
  int device_ = -1;
};

}  // namespace shardlm
