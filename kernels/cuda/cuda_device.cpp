// CUDA error checking, device counting and properties, the device guard.
#include "kernels/cuda/cuda_device.h"

#include <cstdio>

namespace shardlm {

void cuda_check(cudaError_t e, const std::string& what, StatusCode code) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call does not see it
  if (e == cudaErrorMemoryAllocation) code = StatusCode::kOom;
  fail(code, what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

int cuda_device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why)
      *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + " (" +
             cudaGetErrorString(e) + ")";
    return 0;
  }
  if (n == 0 && why) *why = "cudaGetDeviceCount reports no CUDA device";
  return n;
}

std::string CudaDeviceInfo::describe() const {
  char gib[32];
  std::snprintf(gib, sizeof gib, "%.1f GiB", static_cast<double>(total_bytes) / (1ull << 30));
  return std::to_string(index) + ": " + name + " (sm_" + std::to_string(cc_major) +
         std::to_string(cc_minor) + ", " + std::to_string(sm_count) + " SMs, " +
         gib + ")";
}

CudaDeviceInfo cuda_device_info(int device) {
  cudaDeviceProp p{};
  cuda_check(cudaGetDeviceProperties(&p, device),
             "cudaGetDeviceProperties(" + std::to_string(device) + ")");
  CudaDeviceInfo info;
  info.index = device;
  info.name = p.name;
  info.sm_count = p.multiProcessorCount;
  info.cc_major = p.major;
  info.cc_minor = p.minor;
  info.total_bytes = p.totalGlobalMem;
  return info;
}

CudaDeviceGuard::CudaDeviceGuard(int device) : device_(device) {
  cuda_check(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ != device_) {
    cuda_check(cudaSetDevice(device_), "cudaSetDevice(" + std::to_string(device_) + ")");
  }
}

CudaDeviceGuard::~CudaDeviceGuard() {
  if (previous_ >= 0 && previous_ != device_) cudaSetDevice(previous_);
}

}  // namespace shardlm
