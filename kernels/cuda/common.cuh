// Device helpers shared by the kernels in kernels/cuda: weight loads widened to f32, warp and
// block reductions, the I32Arg accessor, and the launch-error check. Included by .cu files
// only; not a public header.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/cuda/cuda_ops.h"
#include "runtime/core/status.h"

namespace shardlm::cuda {

// Throws Error(kBackend) when the last launch failed (bad configuration, no device, ...).
inline void check_launch(const char* op) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    fail(StatusCode::kBackend, std::string("cuda kernel ") + op + ": " + cudaGetErrorString(e));
  }
}

__device__ __forceinline__ int32_t arg_at(const I32Arg& a, int64_t i) {
  return a.dev != nullptr ? a.dev[i] : a.v[i];
}

__device__ __forceinline__ float to_f32(float v) {
  return v;
}
__device__ __forceinline__ float to_f32(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ float to_f32(__nv_fp8_e4m3 v) {  // exact; 0x7f / 0xff are NaN
  return static_cast<float>(v);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of kThreads threads (a multiple of 32, at most 1024); every thread gets it.
template <int kThreads>
__device__ __forceinline__ float block_sum(float v) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block size");
  if constexpr (kThreads == 32) {
    return warp_sum(v);
  } else {
    __shared__ float partial[kThreads / 32];
    __shared__ float total;
    v = warp_sum(v);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
      float s = lane < kThreads / 32 ? partial[lane] : 0.0f;
      s = warp_sum(s);
      if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
  }
}

inline unsigned grid_1d(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace shardlm::cuda
