// The device-sharing communicator: tensor-parallel ranks that are threads of one process and
// whose devices can read each other's memory -- above all several ranks on ONE GPU, which NCCL
// refuses, so the sharded CUDA path is testable at TP = 2 and 4 on a single GPU (also any
// devices with peer access when NCCL is not built).
// A collective on device memory is queued on each rank's stream without a host stream sync:
// ranks gather each other's buffer and event over the host communicator, each rank's stream waits
// for the others' events, sums every rank's buffer in rank order into a private buffer (so all
// ranks get the same bits), waits until every rank has finished reading, then copies the sum
// back. Two host exchanges per collective. Host-memory collectives (MemorySpace::kHost) go to
// the host communicator. The ranks must be threads of one process (pointers and events are
// shared as values).
// Not for production multi-GPU (use NCCL) and not CUDA-graph capturable (host barriers).
#pragma once

#include <memory>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/comm/cuda_comm_context.h"

namespace shardlm {

// Collective over `host` (this rank's host communicator, which must outlive the returned one):
// every rank calls it at the same time. `device_of_rank` lists every rank's device. Throws
// Error(kComm) when two ranks' devices cannot reach each other (no peer access) or the group
// has more than kMaxSumSources (8) ranks.
std::unique_ptr<Communicator> make_cuda_shared_communicator(Communicator& host,
                                                            const std::vector<int>& device_of_rank,
                                                            CudaCommContext context);

}  // namespace shardlm
