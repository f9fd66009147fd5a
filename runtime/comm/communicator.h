// The Communicator interface: the collectives tensor-parallel ranks use (all-reduce sum,
// all-gather, broadcast, barrier). One object per rank, injected into the model; never global.
// Implementations: single (tp = 1, no-ops) and threads (ranks are threads of one process).
// Buffers are host memory here; device-side implementations (NCCL) come with their backends.
// Every call is collective: all ranks of the group must make the same calls in the same order.
// Failures throw Error(kComm).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace shardlm {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In-place element-wise sum over ranks. Every rank ends with bit-identical values.
  //   data [n]
  virtual void all_reduce_sum(float* data, int64_t n) = 0;

  // Concatenates every rank's `send` (sizes may differ between ranks) in rank order into `recv`
  // on every rank. `recv_bytes` must equal the sum of all ranks' send_bytes.
  virtual void all_gather(const void* send, size_t send_bytes, void* recv, size_t recv_bytes) = 0;

  // Copies `bytes` from rank `root`'s `data` into every other rank's `data`.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;

  virtual void barrier() = 0;
};

// The communicator of a group of one: every collective is a no-op (or a copy).
std::unique_ptr<Communicator> make_single_communicator();

}  // namespace shardlm
