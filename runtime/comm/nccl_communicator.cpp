// NcclCommunicator: NCCL collectives on the compute stream, host memory staged or delegated.
#include "runtime/comm/nccl_communicator.h"

#include <nccl.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_device.h"
#include "runtime/core/status.h"

namespace shardlm {

namespace {

static_assert(sizeof(ncclUniqueId) == sizeof(NcclId), "ncclUniqueId is 128 bytes");

void nccl_check(ncclResult_t r, const std::string& what, ncclComm_t comm = nullptr) {
  if (r == ncclSuccess || r == ncclInProgress) return;
  std::string detail = ncclGetErrorString(r);
  if (comm != nullptr) {
    const char* last = ncclGetLastError(comm);
    if (last != nullptr && *last) detail += std::string(": ") + last;
  }
  fail(StatusCode::kComm, "nccl " + what + ": " + detail);
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const NcclId& id, int rank, int size, CudaCommContext ctx, Communicator* host)
      : rank_(rank), size_(size), ctx_(std::move(ctx)), host_(host) {
    CudaDeviceGuard guard(ctx_.device);
    ncclUniqueId uid;
    std::memcpy(&uid, id.data(), sizeof uid);
    nccl_check(ncclCommInitRank(&comm_, size, uid, rank),
               "ncclCommInitRank (rank " + std::to_string(rank) + " of " + std::to_string(size) +
                   " on device " + std::to_string(ctx_.device) + ")");
  }

  ~NcclCommunicator() override {
    CudaDeviceGuard guard(ctx_.device);
    if (staging_) cudaFree(staging_);
    if (comm_ == nullptr) return;
    if (host_ != nullptr && host_->aborted()) {
      ncclCommAbort(comm_);  // peers may never join pending collectives
    } else {
      ncclCommDestroy(comm_);
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce_sum(float* data, int64_t n, MemorySpace space) override {
    if (n <= 0) return;
    if (ctx_.flush) ctx_.flush();
    if (space == MemorySpace::kDevice) {
      CudaDeviceGuard guard(ctx_.device);
      nccl_check(ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat32, ncclSum, comm_,
                               ctx_.stream),
                 "all_reduce", comm_);
      return;
    }
    if (host_) return host_->all_reduce_sum(data, n);
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    void* d = staged_in(data, bytes);
    nccl_check(
        ncclAllReduce(d, d, static_cast<size_t>(n), ncclFloat32, ncclSum, comm_, ctx_.stream),
        "all_reduce (staged)", comm_);
    staged_out(data, d, bytes);
  }

  void all_gather(const void* send, size_t send_bytes, void* recv, size_t recv_bytes,
                  MemorySpace space) override {
    if (ctx_.flush) ctx_.flush();
    const bool device = space == MemorySpace::kDevice;
    if (!device && host_) return host_->all_gather(send, send_bytes, recv, recv_bytes);
    CudaDeviceGuard guard(ctx_.device);
    // Sizes first (8 bytes per rank, staged): the blocks may differ between ranks.
    std::vector<uint64_t> sizes(static_cast<size_t>(size_));
    {
      uint64_t mine = send_bytes;
      auto* d = static_cast<uint64_t*>(staging(sizeof(uint64_t) * (size_ + 1)));
      cuda_check(
          cudaMemcpyAsync(d + size_, &mine, sizeof mine, cudaMemcpyHostToDevice, ctx_.stream),
          "all_gather sizes", StatusCode::kComm);
      nccl_check(ncclAllGather(d + size_, d, 1, ncclUint64, comm_, ctx_.stream),
                 "all_gather (sizes)", comm_);
      cuda_check(cudaMemcpyAsync(sizes.data(), d, sizeof(uint64_t) * size_, cudaMemcpyDeviceToHost,
                                 ctx_.stream),
                 "all_gather sizes", StatusCode::kComm);
      cuda_check(cudaStreamSynchronize(ctx_.stream), "all_gather sizes", StatusCode::kComm);
    }
    uint64_t total = 0;
    for (uint64_t s : sizes) total += s;
    if (total != recv_bytes) {
      fail(StatusCode::kComm, "all_gather: ranks sent " + std::to_string(total) +
                                  " bytes in all, rank " + std::to_string(rank_) + " expected " +
                                  std::to_string(recv_bytes));
    }
    // Device buffers: the caller's, or staging (send block first, then the gathered blocks).
    const void* d_send = send;
    void* d_recv = recv;
    if (!device) {
      auto* base = static_cast<uint8_t*>(staging(send_bytes + recv_bytes));
      cuda_check(cudaMemcpyAsync(base, send, send_bytes, cudaMemcpyHostToDevice, ctx_.stream),
                 "all_gather staging", StatusCode::kComm);
      d_send = base;
      d_recv = base + send_bytes;
    }
    nccl_check(ncclGroupStart(), "group start", comm_);
    uint64_t offset = 0;
    for (int r = 0; r < size_; ++r) {
      const size_t n = sizes[static_cast<size_t>(r)];
      if (n) {
        nccl_check(
            ncclBroadcast(r == rank_ ? d_send : nullptr, static_cast<uint8_t*>(d_recv) + offset, n,
                          ncclUint8, r, comm_, ctx_.stream),
            "all_gather (broadcast of rank " + std::to_string(r) + ")", comm_);
      }
      offset += n;
    }
    nccl_check(ncclGroupEnd(), "group end", comm_);
    if (!device) {
      cuda_check(cudaMemcpyAsync(recv, d_recv, recv_bytes, cudaMemcpyDeviceToHost, ctx_.stream),
                 "all_gather staging", StatusCode::kComm);
      cuda_check(cudaStreamSynchronize(ctx_.stream), "all_gather", StatusCode::kComm);
    }
  }

  void broadcast(void* data, size_t bytes, int root, MemorySpace space) override {
    if (root < 0 || root >= size_) {
      fail(StatusCode::kComm,
           "broadcast from rank " + std::to_string(root) + " of " + std::to_string(size_));
    }
    if (ctx_.flush) ctx_.flush();
    if (space == MemorySpace::kDevice) {
      CudaDeviceGuard guard(ctx_.device);
      nccl_check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, ctx_.stream), "broadcast",
                 comm_);
      return;
    }
    if (host_) return host_->broadcast(data, bytes, root);
    void* d = staged_in(data, bytes);
    nccl_check(ncclBroadcast(d, d, bytes, ncclUint8, root, comm_, ctx_.stream), "broadcast", comm_);
    staged_out(data, d, bytes);
  }

  void barrier() override {
    if (ctx_.flush) ctx_.flush();
    if (host_) return host_->barrier();
    CudaDeviceGuard guard(ctx_.device);
    void* d = staging(sizeof(float));
    nccl_check(ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, comm_, ctx_.stream), "barrier", comm_);
    cuda_check(cudaStreamSynchronize(ctx_.stream), "barrier", StatusCode::kComm);
  }

  bool aborted() const override { return host_ != nullptr && host_->aborted(); }

 private:
  void* staging(size_t bytes) {
    if (bytes > staging_bytes_) {
      if (staging_) {
        cuda_check(cudaStreamSynchronize(ctx_.stream), "staging resize", StatusCode::kComm);
        cudaFree(staging_);
        staging_ = nullptr;
      }
      cuda_check(cudaMalloc(&staging_, bytes), "nccl staging buffer", StatusCode::kComm);
      staging_bytes_ = bytes;
    }
    return staging_;
  }
  void* staged_in(const void* host, size_t bytes) {
    CudaDeviceGuard guard(ctx_.device);
    void* d = staging(bytes);
    cuda_check(cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, ctx_.stream), "staging",
               StatusCode::kComm);
    return d;
  }
  void staged_out(void* host, const void* d, size_t bytes) {
    CudaDeviceGuard guard(ctx_.device);
    cuda_check(cudaMemcpyAsync(host, d, bytes, cudaMemcpyDeviceToHost, ctx_.stream), "staging",
               StatusCode::kComm);
    cuda_check(cudaStreamSynchronize(ctx_.stream), "staging", StatusCode::kComm);
  }

  int rank_, size_;
  CudaCommContext ctx_;
  Communicator* host_;  // null when bootstrapped from a bare id
  ncclComm_t comm_ = nullptr;
  void* staging_ = nullptr;
  size_t staging_bytes_ = 0;
};

}  // namespace

NcclId nccl_unique_id() {
  ncclUniqueId uid;
  nccl_check(ncclGetUniqueId(&uid), "ncclGetUniqueId");
  NcclId id;
  std::memcpy(id.data(), &uid, sizeof uid);
  return id;
}

std::unique_ptr<Communicator> make_nccl_communicator(const NcclId& id, int rank, int size,
                                                     CudaCommContext context) {
  return std::make_unique<NcclCommunicator>(id, rank, size, std::move(context), nullptr);
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, CudaCommContext context) {
  // Rank 0 creates the id and broadcasts it over the host communicator.
  NcclId id{};
  if (host.rank() == 0) id = nccl_unique_id();
  host.broadcast(id.data(), id.size(), 0, MemorySpace::kHost);
  return std::make_unique<NcclCommunicator>(id, host.rank(), host.size(), std::move(context),
                                            &host);
}

}  // namespace shardlm
