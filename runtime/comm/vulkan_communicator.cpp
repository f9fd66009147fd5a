// VulkanCommunicator: device buffers are mapped or staged, then the host communicator runs.
#include "runtime/comm/vulkan_communicator.h"

#include <cstring>
#include <vector>

namespace shardlm {

namespace {

class VulkanCommunicator final : public Communicator {
 public:
  VulkanCommunicator(DeviceHostAccess& backend, Communicator& host)
      : backend_(backend), host_(&host) {}

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }

  void all_reduce_sum(float* data, int64_t n, MemorySpace space) override {
    if (space == MemorySpace::kHost) return host_->all_reduce_sum(data, n);
    if (host_->size() == 1) return;
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    auto* h = static_cast<float*>(backend_.begin_host_access(data, bytes));
    host_->all_reduce_sum(h, n);
    backend_.end_host_access(data, bytes, true);
  }

  void all_gather(const void* send, size_t send_bytes, void* recv, size_t recv_bytes,
                  MemorySpace space) override {
    if (space == MemorySpace::kHost) return host_->all_gather(send, send_bytes, recv, recv_bytes);
    // Device tensors: gather through host copies (send is read before recv is written).
    std::vector<uint8_t> s(send_bytes), r(recv_bytes);
    const void* hs = backend_.begin_host_access(const_cast<void*>(send), send_bytes);
    std::memcpy(s.data(), hs, send_bytes);
    backend_.end_host_access(const_cast<void*>(send), send_bytes, false);
    host_->all_gather(s.data(), send_bytes, r.data(), recv_bytes);
    void* hr = backend_.begin_host_access(recv, recv_bytes);
    std::memcpy(hr, r.data(), recv_bytes);
    backend_.end_host_access(recv, recv_bytes, true);
  }

  void broadcast(void* data, size_t bytes, int root, MemorySpace space) override {
    if (space == MemorySpace::kHost) return host_->broadcast(data, bytes, root);
    void* h = backend_.begin_host_access(data, bytes);
    host_->broadcast(h, bytes, root);
    backend_.end_host_access(data, bytes, host_->rank() != root);
  }

  void barrier() override {
    backend_.synchronize();
    host_->barrier();
  }

  bool aborted() const override { return host_->aborted(); }

 private:
  DeviceHostAccess& backend_;
  Communicator* host_;
};

}  // namespace

std::unique_ptr<Communicator> make_vulkan_communicator(DeviceHostAccess& device,
                                                       Communicator& host) {
  return std::make_unique<VulkanCommunicator>(device, host);
}

}  // namespace shardlm
