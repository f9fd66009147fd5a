// The tp = 1 communicator: collectives over a group of one.
#include <cstring>
#include <string>

#include "runtime/comm/communicator.h"
#include "runtime/core/status.h"

namespace shardlm {

namespace {

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, int64_t, MemorySpace) override {}
  void all_gather(const void* send, size_t send_bytes, void* recv, size_t recv_bytes,
                  MemorySpace space) override {
    if (send_bytes != recv_bytes) {
      fail(StatusCode::kComm, "all_gather: " + std::to_string(send_bytes) + " bytes sent but " +
                                  std::to_string(recv_bytes) + " expected");
    }
    if (send != recv && send_bytes) {
      require_host(space, "the single communicator's all_gather");
      std::memcpy(recv, send, send_bytes);
    }
  }
  void broadcast(void*, size_t, int root, MemorySpace) override {
    if (root != 0) fail(StatusCode::kComm, "broadcast from rank " + std::to_string(root) + " of 1");
  }
  void barrier() override {}
};

}  // namespace

void require_host(MemorySpace space, const char* who) {
  if (space != MemorySpace::kHost) {
    fail(StatusCode::kComm, std::string(who) +
                                " got device memory; a device backend's communicator must stage "
                                "it (this is a bug in that backend)");
  }
}

std::unique_ptr<Communicator> make_single_communicator() {
  return std::make_unique<SingleCommunicator>();
}

}  // namespace shardlm
