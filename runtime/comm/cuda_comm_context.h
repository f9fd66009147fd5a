// What a CUDA communicator needs from the rank it serves: the rank's device and compute
// stream (collectives are queued on it, ordered with the rank's kernels) and a hook that
// flushes work the backend has deferred (a fused residual add) before a collective reads
// device memory. Plain data: the cuda backend fills it, the NCCL and device-sharing
// communicators use it.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>

namespace shardlm {

struct CudaCommContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  std::function<void()> flush;  // may be empty
};

}  // namespace shardlm
