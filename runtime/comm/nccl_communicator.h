// The NCCL communicator: one rank per GPU, collectives queued on the rank's compute stream
// (ordered with its kernels, no host synchronization per collective). Two ways to start it:
//   - over a host communicator (the engine's: threads of one process today, processes later):
//     make_nccl_communicator(host, ...) has rank 0 create the unique id and broadcast it;
//   - across processes (MPI, a launcher): every process calls nccl_unique_id() on rank 0,
//     ships the 128 bytes to the others however it likes, and calls
//     make_nccl_communicator(id, rank, size, ...).
// Device memory is reduced in place by NCCL. Host memory (the engine gathers per-rank argmax
// results and logits on the host) goes to the host communicator when there is one, else it is
// staged through a device buffer and synchronized. Which memory a buffer is in comes from the
// caller (MemorySpace), never from the pointer. all_gather takes different
// sizes per rank (the vocabulary does not always split evenly): sizes are exchanged first,
// then each rank's block is broadcast inside one NCCL group.
// When the host communicator reports aborted() (another rank failed), the destructor aborts the
// NCCL communicator instead of waiting for collectives that will never complete.
// Only built when NCCL is found (SHARDLM_HAVE_NCCL).
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "runtime/comm/communicator.h"
#include "runtime/comm/cuda_comm_context.h"

namespace shardlm {

using NcclId = std::array<uint8_t, 128>;  // ncclUniqueId, opaque

// A fresh unique id (ncclGetUniqueId). Throws Error(kComm).
NcclId nccl_unique_id();

// Multi-process bootstrap: blocks until all `size` ranks have called it with the same id.
std::unique_ptr<Communicator> make_nccl_communicator(const NcclId& id, int rank, int size,
                                                     CudaCommContext context);

// Bootstrap through `host` (collective: every rank calls it at once with its own host
// communicator, which must outlive the returned one and serves its host-memory collectives).
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, CudaCommContext context);

}  // namespace shardlm
