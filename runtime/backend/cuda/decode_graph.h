// CUDA graph for the decode step. The Backend interface is eager: every op passes its pointers
// and small host arrays (ids, positions) at call time, and the KV rows a step writes move with
// the position. So the step is re-captured each time (stream capture records the kernels, it
// does not run them) and the captured graph updates the instantiated one in place
// (cudaGraphExecUpdate: same kernels, new parameters), falling back to a fresh instantiation
// when the topology changed. What is saved is the per-kernel launch work on the device side;
// what a capture-once design needs (positions and KV slots in device memory) is described in
// docs/cuda.md. A paged step's larger host arrays (slots, block table, attention plan) are
// recorded as copies from pinned staging that run when the graph is launched
// (cuda_paged_ops.cpp, pinned_staging.h). Not usable with collectives that cannot be updated
// in a graph (NCCL) or that synchronize the host (the device-sharing communicator): the
// backend enables it for tp = 1.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm {

struct GraphStats {
  uint64_t launches = 0;        // steps run as a graph
  uint64_t updates = 0;         // launches that reused the instantiated graph
  uint64_t instantiations = 0;  // launches that had to instantiate (first, or topology change)
};

class DecodeGraph {
 public:
  explicit DecodeGraph(cudaStream_t stream) : stream_(stream) {}
  ~DecodeGraph();
  DecodeGraph(const DecodeGraph&) = delete;
  DecodeGraph& operator=(const DecodeGraph&) = delete;

  // Starts capturing the stream (relaxed mode: other threads' CUDA calls are unaffected).
  void begin();
  bool capturing() const { return capturing_; }
  // Ends the capture, updates or instantiates the executable graph and launches it.
  void end_and_launch();
  // Ends a capture whose step failed, discarding what was recorded. Never throws.
  void abandon() noexcept;
  const GraphStats& stats() const { return stats_; }

 private:
  cudaStream_t stream_;
  cudaGraphExec_t exec_ = nullptr;
  bool capturing_ = false;
  GraphStats stats_;
};

}  // namespace shardlm
