// Pinned host memory for the small host arrays (KV slots, block tables, paged-attention plans)
// that a CUDA-graph-captured step copies to the device. A capture may not copy from pageable
// memory, and a captured copy reads its source when the graph runs, not when it is recorded:
// so the arrays are copied here while the step is captured, and the area is reused only after
// the graph that read it has passed an event (reset()). Eager steps do not use it (they copy
// from pageable memory, which returns once staged). Not thread-safe: one rank's backend, on
// its thread. Not the device buffers (CudaBackend::workspace).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

namespace shardlm {

class PinnedStaging {
 public:
  PinnedStaging() = default;
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // Grows the area to at least `bytes` (outside a capture, so captures rarely allocate). A
  // replaced area is freed once nothing queued can read it.
  void reserve(size_t bytes);
  // Start of a capture: waits until the last launched graph that read the area has run, then
  // frees replaced areas and starts filling from the beginning.
  void reset();
  // A copy of `src` that stays unchanged until the next reset() (16-byte aligned).
  void* put(const void* src, size_t bytes);
  // The captured graph that reads what put() returned since reset() was launched on `stream`.
  void launched(cudaStream_t stream);

 private:
  void grow(size_t bytes);

  void* base_ = nullptr;
  size_t cap_ = 0, used_ = 0;
  std::vector<void*> retired_;
  cudaEvent_t done_ = nullptr;
  bool pending_ = false;  // done_ was recorded after a launch that reads the area
};

}  // namespace shardlm
