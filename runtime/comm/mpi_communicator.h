// The MPI communicator: tensor-parallel ranks that are processes (one per rank, started by
// `mpirun`), joined by MPI over whatever transport Open MPI picks (shared memory on one machine,
// TCP or InfiniBand across machines). Host memory only (device backends build their own
// communicator on top of this one, e.g. NCCL bootstrapped by its broadcast).
// Two reductions:
//   kFast         MPI_Allreduce (the library's algorithm; every rank gets the same bits, but not
//                 necessarily the bits of another process layout);
//   kRankOrdered  reduce-scatter by rank-ordered sums then all-gather, exactly as the threads
//                 communicator sums (chunk r of the buffer is summed by rank r over ranks 0..N-1
//                 in order from 0.0f), so results are bit-identical to the in-process run and
//                 deterministic mode holds across process layouts. Two collectives per call.
// all_gather takes different sizes per rank (sizes are exchanged first). Failures (an MPI error,
// a size mismatch) throw Error(kComm) naming the ranks. Only built with MPI (SHARDLM_HAVE_MPI).
// Not the launcher or the driver/worker protocol.
#pragma once

#include <memory>
#include <string>

#include "runtime/comm/communicator.h"

namespace shardlm {

enum class MpiReduction { kFast, kRankOrdered };
const char* mpi_reduction_name(MpiReduction r);  // "fast", "rank-ordered"

// MPI for this process: initialized (MPI_THREAD_MULTIPLE requested, MPI_THREAD_SERIALIZED
// required: a rank's collectives run on its compute thread, not always the main one) on
// construction unless already initialized, finalized on destruction when it initialized it.
// Errors return codes (MPI_ERRORS_RETURN) instead of aborting, so they become Error(kComm).
// After a collective timed out (a peer died or hung) it does not finalize: the process ends
// without MPI_Finalize and the launcher stops the rest of the job.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // "Open MPI v4.1.4, ..." (MPI_Get_library_version, first line).
  static std::string library_version();
  // True when this process was started by mpirun / mpiexec (Open MPI or MPICH environment).
  static bool launched_by_mpirun();

 private:
  bool owns_ = false;
  int rank_ = 0, size_ = 1;
};

// This process's communicator over MPI_COMM_WORLD (duplicated, so it never mixes with other
// users of the world communicator). MPI must be initialized (MpiRuntime).
std::unique_ptr<Communicator> make_mpi_communicator(MpiReduction reduction);

}  // namespace shardlm
