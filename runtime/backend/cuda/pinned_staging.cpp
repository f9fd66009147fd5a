// PinnedStaging: a bump area of pinned host memory, recycled after an event.
#include "runtime/backend/cuda/pinned_staging.h"

#include <algorithm>
#include <cstring>

#include "kernels/cuda/cuda_device.h"

namespace shardlm {

namespace {
constexpr size_t kMinBytes = 64u << 10;
constexpr size_t kAlign = 16;
}  // namespace

PinnedStaging::~PinnedStaging() {
  // The owner synchronized its stream first: nothing reads the area any more.
  if (done_) {
    cudaEventSynchronize(done_);
    cudaEventDestroy(done_);
  }
  for (void* p : retired_) cudaFreeHost(p);
  if (base_) cudaFreeHost(base_);
  cudaGetLastError();
}

void PinnedStaging::grow(size_t bytes) {
  const size_t cap = std::max({bytes, 2 * cap_, kMinBytes});
  void* p = nullptr;
  cuda_check(cudaHostAlloc(&p, cap, cudaHostAllocDefault),
             "pinned staging for step arrays (" + std::to_string(cap) + " bytes)");
  if (base_) retired_.push_back(base_);  // copies already recorded may still read it
  base_ = p;
  cap_ = cap;
  used_ = 0;
}

void PinnedStaging::reserve(size_t bytes) {
  if (cap_ < bytes) grow(bytes);
}

void PinnedStaging::reset() {
  if (pending_) {
    cuda_check(cudaEventSynchronize(done_), "waiting for the previous graph's staged copies");
    pending_ = false;
  }
  for (void* p : retired_) cudaFreeHost(p);
  retired_.clear();
  used_ = 0;
}

void* PinnedStaging::put(const void* src, size_t bytes) {
  used_ = (used_ + kAlign - 1) / kAlign * kAlign;
  if (used_ + bytes > cap_) grow(used_ + bytes);  // relaxed capture: allocation is allowed
  void* dst = static_cast<char*>(base_) + used_;
  if (bytes) std::memcpy(dst, src, bytes);
  used_ += bytes;
  return dst;
}

void PinnedStaging::launched(cudaStream_t stream) {
  if (!done_) {
    cuda_check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
  }
  cuda_check(cudaEventRecord(done_, stream), "cudaEventRecord (staged copies)");
  pending_ = true;
}

}  // namespace shardlm
