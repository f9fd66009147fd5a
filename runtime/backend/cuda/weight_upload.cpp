// WeightUploader: pinned staging ring, copy stream, events.
#include "runtime/backend/cuda/weight_upload.h"

#include <chrono>
#include <cstring>

#include "kernels/cuda/cuda_device.h"

namespace shardlm {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr size_t kMinPiecePerThread = 1 << 20;  // split host copies into >= 1 MiB pieces

}  // namespace

WeightUploader::WeightUploader(size_t chunk_bytes, int n_buffers, int n_threads)
    : chunk_(chunk_bytes), n_buffers_(n_buffers < 2 ? 2 : n_buffers), pool_(n_threads) {}

WeightUploader::~WeightUploader() {
  try {
    finish();
  } catch (...) {  // destructors never throw; the device is gone or broken anyway
  }
  if (all_done_) cudaEventDestroy(all_done_);
  if (stream_) cudaStreamDestroy(stream_);
}

void WeightUploader::start() {
  if (!stream_) {
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "upload stream");
    cuda_check(cudaEventCreateWithFlags(&all_done_, cudaEventDisableTiming), "upload event");
  }
  slots_.resize(static_cast<size_t>(n_buffers_));
  for (Slot& s : slots_) {
    if (!s.host) {
      cuda_check(cudaHostAlloc(&s.host, chunk_, cudaHostAllocDefault),
                 "pinned staging buffer of " + std::to_string(chunk_) + " bytes");
    }
    if (!s.done) cuda_check(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "event");
    s.in_flight = false;
  }
  current_ = 0;
  fill_ = 0;
  active_ = true;
  t0_ = now_seconds();
}

void WeightUploader::rotate() {
  Slot& cur = slots_[static_cast<size_t>(current_)];
  cuda_check(cudaEventRecord(cur.done, stream_), "upload event record");
  cur.in_flight = true;
  current_ = (current_ + 1) % n_buffers_;
  Slot& next = slots_[static_cast<size_t>(current_)];
  if (next.in_flight) cuda_check(cudaEventSynchronize(next.done), "waiting for an upload");
  next.in_flight = false;
  fill_ = 0;
}

void WeightUploader::fill(void* dst, const void* src, size_t n) {
  if (n >= 2 * kMinPiecePerThread && pool_.size() > 1) {
    pool_.parallel_for(
        static_cast<int64_t>(n),
        [&](int64_t b, int64_t e) {
          std::memcpy(static_cast<uint8_t*>(dst) + b, static_cast<const uint8_t*>(src) + b,
                      static_cast<size_t>(e - b));
        },
        static_cast<int64_t>(kMinPiecePerThread));
  } else {
    std::memcpy(dst, src, n);
  }
}

void WeightUploader::upload(void* dst, const void* src, size_t bytes) {
  if (!active_) start();
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  while (bytes > 0) {
    if (fill_ == chunk_) rotate();
    const size_t n = bytes < chunk_ - fill_ ? bytes : chunk_ - fill_;
    void* staging = static_cast<uint8_t*>(slots_[static_cast<size_t>(current_)].host) + fill_;
    fill(staging, s, n);
    cuda_check(cudaMemcpyAsync(d, staging, n, cudaMemcpyHostToDevice, stream_),
               "weight upload (cudaMemcpyAsync of " + std::to_string(n) + " bytes)");
    fill_ += n;
    d += n;
    s += n;
    bytes -= n;
    stats_.bytes += n;
  }
  ++stats_.tensors;
}

void WeightUploader::order_before(cudaStream_t stream) {
  if (!active_) return;
  cuda_check(cudaEventRecord(all_done_, stream_), "upload event record");
  cuda_check(cudaStreamWaitEvent(stream, all_done_, 0), "waiting for uploads");
}

void WeightUploader::finish() {
  if (!active_) return;
  active_ = false;
  cuda_check(cudaStreamSynchronize(stream_), "finishing the weight upload");
  stats_.seconds += now_seconds() - t0_;
  for (Slot& s : slots_) {
    if (s.host) cudaFreeHost(s.host);
    if (s.done) cudaEventDestroy(s.done);
    s = Slot{};
  }
}

}  // namespace shardlm
