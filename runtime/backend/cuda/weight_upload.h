// Uploads weights from host memory (the mmapped pack) to the device through a ring of pinned
// staging buffers on a dedicated copy stream. Host threads copy a piece of a tensor into the
// current staging buffer (which also faults the mapped pages in) and the DMA of that piece is
// queued at once, so the disk/page-cache reads of the next piece overlap the PCIe transfer of
// the previous ones; a staging buffer is refilled only after its last DMA finished (an event).
// Reports bytes, seconds and GB/s of the whole load. Not an allocator: callers own `dst`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/core/thread_pool.h"

namespace shardlm {

struct UploadStats {
  uint64_t bytes = 0;
  uint64_t tensors = 0;
  double seconds = 0;  // first upload() to the end of finish(): includes the host reads
  double gb_per_s() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0; }
};

class WeightUploader {
 public:
  // Staging: n_buffers pinned buffers of chunk_bytes each (allocated on first use).
  // `n_threads` host threads fill them. The current device must be the destination's device.
  WeightUploader(size_t chunk_bytes, int n_buffers, int n_threads);
  ~WeightUploader();
  WeightUploader(const WeightUploader&) = delete;
  WeightUploader& operator=(const WeightUploader&) = delete;

  // Queues a copy of `bytes` from `src` (host) to `dst` (device). Returns when `src` has been
  // read; the DMA may still be running. Throws Error(kBackend/kOom) on CUDA failures.
  void upload(void* dst, const void* src, size_t bytes);
  // Makes `stream` wait (on the device, no host sync) for every upload queued so far.
  void order_before(cudaStream_t stream);
  // Waits for every upload, stops the clock and frees the staging buffers. Idempotent; a
  // later upload() starts a new round (stats accumulate).
  void finish();
  bool pending() const { return active_; }
  const UploadStats& stats() const { return stats_; }

 private:
  struct Slot {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
    bool in_flight = false;
  };
  void start();
  void rotate();
  void fill(void* dst, const void* src, size_t n);

  size_t chunk_;
  int n_buffers_;
  ThreadPool pool_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t all_done_ = nullptr;
  std::vector<Slot> slots_;
  int current_ = 0;
  size_t fill_ = 0;
  bool active_ = false;
  double t0_ = 0;
  UploadStats stats_;
};

}  // namespace shardlm
