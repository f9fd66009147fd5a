// CudaSharedCommunicator: event handshakes through the host communicator, rank-ordered device
// sums.
#include "runtime/comm/cuda_shared_communicator.h"

#include <cstring>
#include <string>

#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/cuda_ops.h"
#include "runtime/core/status.h"

namespace shardlm {

namespace {

// What a rank publishes for one device collective (lives on its stack until barrier B).
struct Published {
  const void* ptr;
  size_t bytes;
  cudaEvent_t ready;      // recorded after the rank's producers of `ptr`
  cudaEvent_t read_done;  // recorded after the rank's reads of the others' buffers
};

class CudaSharedCommunicator final : public Communicator {
 public:
  CudaSharedCommunicator(Communicator& host, CudaCommContext ctx)
      : host_(host), rank_(host.rank()), ctx_(std::move(ctx)) {
    CudaDeviceGuard guard(ctx_.device);
    cuda_check(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "comm event",
               StatusCode::kComm);
    cuda_check(cudaEventCreateWithFlags(&read_done_, cudaEventDisableTiming), "comm event",
               StatusCode::kComm);
  }

  ~CudaSharedCommunicator() override {
    CudaDeviceGuard guard(ctx_.device);
    if (tmp_) cudaFree(tmp_);
    if (ready_) cudaEventDestroy(ready_);
    if (read_done_) cudaEventDestroy(read_done_);
  }

  int rank() const override { return rank_; }
  int size() const override { return host_.size(); }

  void all_reduce_sum(float* data, int64_t n, MemorySpace space) override {
    if (size() == 1 || n <= 0) return;
    if (ctx_.flush) ctx_.flush();
    if (space == MemorySpace::kHost) return host_.all_reduce_sum(data, n);
    CudaDeviceGuard guard(ctx_.device);
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    ensure_tmp(bytes);
    std::vector<Published> peers = exchange(data, bytes);
    for (int r = 0; r < size(); ++r) {
      if (peers[static_cast<size_t>(r)].bytes != bytes) {
        finish_exchange(peers, false);
        fail(StatusCode::kComm, "all_reduce: rank " + std::to_string(r) + " passed " +
                                    std::to_string(peers[static_cast<size_t>(r)].bytes / 4) +
                                    " elements, rank " + std::to_string(rank_) + " passed " +
                                    std::to_string(n));
      }
    }
    wait_ready(peers);
    std::vector<const float*> srcs;
    for (const Published& p : peers) srcs.push_back(static_cast<const float*>(p.ptr));
    cuda::sum_buffers(srcs.data(), size(), static_cast<float*>(tmp_), n, ctx_.stream);
    finish_exchange(peers, true);
    cuda_check(cudaMemcpyAsync(data, tmp_, bytes, cudaMemcpyDeviceToDevice, ctx_.stream),
               "all_reduce copy-back", StatusCode::kComm);
  }

  void all_gather(const void* send, size_t send_bytes, void* recv, size_t recv_bytes,
                  MemorySpace space) override {
    if (ctx_.flush) ctx_.flush();
    if (space == MemorySpace::kHost) return host_.all_gather(send, send_bytes, recv, recv_bytes);
    CudaDeviceGuard guard(ctx_.device);
    std::vector<Published> peers = exchange(send, send_bytes);
    size_t total = 0;
    for (const Published& p : peers) total += p.bytes;
    if (total != recv_bytes) {
      finish_exchange(peers, false);
      fail(StatusCode::kComm, "all_gather: ranks sent " + std::to_string(total) +
                                  " bytes in all, rank " + std::to_string(rank_) + " expected " +
                                  std::to_string(recv_bytes));
    }
    wait_ready(peers);
    auto* out = static_cast<uint8_t*>(recv);
    for (const Published& p : peers) {
      if (p.bytes) {
        cuda_check(cudaMemcpyAsync(out, p.ptr, p.bytes, cudaMemcpyDefault, ctx_.stream),
                   "all_gather copy", StatusCode::kComm);
      }
      out += p.bytes;
    }
    finish_exchange(peers, true);
  }

  void broadcast(void* data, size_t bytes, int root, MemorySpace space) override {
    if (root < 0 || root >= size()) {
      fail(StatusCode::kComm,
           "broadcast from rank " + std::to_string(root) + " of " + std::to_string(size()));
    }
    if (ctx_.flush) ctx_.flush();
    if (space == MemorySpace::kHost) return host_.broadcast(data, bytes, root);
    CudaDeviceGuard guard(ctx_.device);
    std::vector<Published> peers = exchange(data, bytes);
    const Published& src = peers[static_cast<size_t>(root)];
    if (src.bytes != bytes) {
      finish_exchange(peers, false);
      fail(StatusCode::kComm, "broadcast: root sent " + std::to_string(src.bytes) +
                                  " bytes, rank " + std::to_string(rank_) + " expected " +
                                  std::to_string(bytes));
    }
    if (rank_ != root && bytes) {
      cuda_check(cudaStreamWaitEvent(ctx_.stream, src.ready, 0), "broadcast wait",
                 StatusCode::kComm);
      cuda_check(cudaMemcpyAsync(data, src.ptr, bytes, cudaMemcpyDefault, ctx_.stream),
                 "broadcast copy", StatusCode::kComm);
    }
    finish_exchange(peers, true);
  }

  void barrier() override {
    if (ctx_.flush) ctx_.flush();
    host_.barrier();
  }

  bool aborted() const override { return host_.aborted(); }

 private:
  void ensure_tmp(size_t bytes) {
    if (tmp_bytes_ >= bytes) return;
    if (tmp_) {
      cuda_check(cudaStreamSynchronize(ctx_.stream), "comm buffer resize", StatusCode::kComm);
      cudaFree(tmp_);
      tmp_ = nullptr;
    }
    cuda_check(cudaMalloc(&tmp_, bytes), "comm buffer of " + std::to_string(bytes) + " bytes",
               StatusCode::kComm);
    tmp_bytes_ = bytes;
  }

  // Exchange A: records `ready` after this rank's producers and gathers every rank's
  // publication over the host communicator (pointers and events are valid across the threads
  // of one process).
  std::vector<Published> exchange(const void* ptr, size_t bytes) {
    cuda_check(cudaEventRecord(ready_, ctx_.stream), "comm event record", StatusCode::kComm);
    const Published me{ptr, bytes, ready_, read_done_};
    std::vector<Published> all(static_cast<size_t>(size()));
    host_.all_gather(&me, sizeof me, all.data(), all.size() * sizeof(Published));
    return all;
  }

  void wait_ready(const std::vector<Published>& peers) {
    for (int r = 0; r < size(); ++r) {
      if (r == rank_) continue;
      cuda_check(cudaStreamWaitEvent(ctx_.stream, peers[static_cast<size_t>(r)].ready, 0),
                 "comm wait", StatusCode::kComm);
    }
  }

  // Barrier B: records `read_done` after this rank's reads; afterwards this rank's stream
  // waits until every other rank has read this rank's buffer, so later writes cannot race.
  void finish_exchange(const std::vector<Published>& peers, bool wait_readers) {
    cudaEventRecord(read_done_, ctx_.stream);
    host_.barrier();
    if (!wait_readers) return;
    for (int r = 0; r < size(); ++r) {
      if (r == rank_) continue;
      cuda_check(cudaStreamWaitEvent(ctx_.stream, peers[static_cast<size_t>(r)].read_done, 0),
                 "comm wait", StatusCode::kComm);
    }
  }

  Communicator& host_;
  int rank_;
  CudaCommContext ctx_;
  cudaEvent_t ready_ = nullptr;
  cudaEvent_t read_done_ = nullptr;
  void* tmp_ = nullptr;
  size_t tmp_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_cuda_shared_communicator(Communicator& host,
                                                            const std::vector<int>& device_of_rank,
                                                            CudaCommContext context) {
  const int rank = host.rank();
  if (host.size() > cuda::kMaxSumSources) {
    fail(StatusCode::kComm, "the device-sharing communicator joins at most " +
                                std::to_string(cuda::kMaxSumSources) + " ranks, not " +
                                std::to_string(host.size()));
  }
  if (static_cast<int>(device_of_rank.size()) != host.size()) {
    fail(StatusCode::kInternal, "device list of " + std::to_string(device_of_rank.size()) +
                                    " ranks for a group of " + std::to_string(host.size()));
  }
  const int mine = device_of_rank[static_cast<size_t>(rank)];
  CudaDeviceGuard guard(mine);
  for (int r = 0; r < host.size(); ++r) {
    const int other = device_of_rank[static_cast<size_t>(r)];
    if (other == mine) continue;
    int can = 0;
    cuda_check(cudaDeviceCanAccessPeer(&can, mine, other), "cudaDeviceCanAccessPeer",
               StatusCode::kComm);
    if (!can) {
      fail(StatusCode::kComm, "ranks " + std::to_string(rank) + " and " + std::to_string(r) +
                                  " are on devices " + std::to_string(mine) + " and " +
                                  std::to_string(other) +
                                  ", which have no peer access; build with NCCL or give each "
                                  "rank its own device");
    }
    const cudaError_t e = cudaDeviceEnablePeerAccess(other, 0);
    if (e != cudaErrorPeerAccessAlreadyEnabled)
      cuda_check(e, "cudaDeviceEnablePeerAccess", StatusCode::kComm);
    cudaGetLastError();
  }
  return std::make_unique<CudaSharedCommunicator>(host, std::move(context));
}

}  // namespace shardlm
