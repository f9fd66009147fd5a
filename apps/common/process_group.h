// Ranks as processes for the programs: when a program was started by mpirun, MPI is initialized
// here and `comm` is the MPI communicator that EngineOptions::process_comm takes; otherwise
// nothing happens and the engine runs every rank as a thread. A build without MPI started by
// mpirun refuses (it would run N independent copies of the model). Declare it before the
// Engine so the engine is gone before MPI is finalized. Not the engine's driver/worker protocol
// (engine.h: execute_step, serve_steps).
#pragma once

#include <memory>

#include "runtime/comm/communicator.h"

namespace shardlm::apps {

class ProcessGroup {
 public:
  // `rank_ordered`: the reduction bit-identical to the in-process threads communicator.
  ProcessGroup(int* argc, char*** argv, bool rank_ordered);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  bool active() const { return comm_ != nullptr; }
  int rank() const;  // 0 when not active
  int size() const;  // 1 when not active
  const std::shared_ptr<Communicator>& comm() const { return comm_; }
  // This process's rank among the processes of its machine (OMPI_COMM_WORLD_LOCAL_RANK,
  // MPI_LOCALRANKID), or -1 when unknown or not active: a device backend's rank takes the GPU
  // of that index unless --device says otherwise.
  int local_rank() const;

  // True when the environment says mpirun (Open MPI, MPICH/PMI) started this process.
  static bool launched_by_mpirun();

 private:
  struct Mpi;
  std::unique_ptr<Mpi> mpi_;
  std::shared_ptr<Communicator> comm_;
};

}  // namespace shardlm::apps
