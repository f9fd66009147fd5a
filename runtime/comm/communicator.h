// The Communicator interface: the collectives tensor-parallel ranks use (all-reduce sum,
// all-gather, broadcast, barrier). One object per rank, injected into the model; never global.
// Implementations: single (tp = 1, no-ops), threads (ranks are threads of one process), and the
// device communicators (NCCL, CUDA device sharing, Vulkan) that a backend builds on top of a
// host communicator. Each collective is told where its buffers live (MemorySpace, the tag of
// the tensors they belong to); host communicators take only kHost.
// Every call is collective: all ranks of the group must make the same calls in the same order.
// Failures throw Error(kComm). Knows nothing of backends or threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/core/tensor.h"

namespace shardlm {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // The defaults of `space` below belong to this interface (callers hold a Communicator&);
  // implementations repeat the parameter without a default.

  // In-place element-wise sum over ranks. Every rank ends with bit-identical values.
  //   data [n]
  virtual void all_reduce_sum(float* data, int64_t n, MemorySpace space = MemorySpace::kHost) = 0;

  // Concatenates every rank's `send` (sizes may differ between ranks) in rank order into `recv`
  // on every rank. `recv_bytes` must equal the sum of all ranks' send_bytes. Both buffers are
  // in `space`.
  virtual void all_gather(const void* send, size_t send_bytes, void* recv, size_t recv_bytes,
                          MemorySpace space = MemorySpace::kHost) = 0;

  // Copies `bytes` from rank `root`'s `data` into every other rank's `data`.
  virtual void broadcast(void* data, size_t bytes, int root,
                         MemorySpace space = MemorySpace::kHost) = 0;

  virtual void barrier() = 0;

  // True once the group was stopped because a rank failed (every collective then throws
  // Error(kComm)); device communicators use it to abort instead of waiting on dead peers.
  virtual bool aborted() const { return false; }

  // Collectives that wait longer than `seconds` for the other ranks give up with Error(kComm)
  // (0 = wait for ever). For communicators between processes, where a peer can die or hang
  // unseen; the in-process ones ignore it (a failing rank thread aborts its group).
  virtual void set_timeout(double seconds) { (void)seconds; }

  // True when the ranks are separate processes (pointers and device events cannot be shared
  // between them, so device communicators must use a transport such as NCCL).
  virtual bool spans_processes() const { return false; }
};

// Throws Error(kComm) naming `who` when `space` is not host memory (for host communicators).
void require_host(MemorySpace space, const char* who);

// The communicator of a group of one: every collective is a no-op (or a copy).
std::unique_ptr<Communicator> make_single_communicator();

}  // namespace shardlm
