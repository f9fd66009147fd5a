// ProcessGroup: MPI when launched by mpirun (and built with it), else nothing.
#include "apps/common/process_group.h"

#include <cstdlib>

#include "runtime/core/status.h"
#if defined(SHARDLM_HAVE_MPI)
#include "runtime/comm/mpi_communicator.h"
#endif

namespace shardlm::apps {

struct ProcessGroup::Mpi {
#if defined(SHARDLM_HAVE_MPI)
  Mpi(int* argc, char*** argv) : runtime(argc, argv) {}
  MpiRuntime runtime;
#endif
};

ProcessGroup::ProcessGroup(int* argc, char*** argv, bool rank_ordered) {
  if (!launched_by_mpirun()) return;
#if defined(SHARDLM_HAVE_MPI)
  mpi_ = std::make_unique<Mpi>(argc, argv);
  comm_ = make_mpi_communicator(rank_ordered ? MpiReduction::kRankOrdered : MpiReduction::kFast);
#else
  (void)argc;
  (void)argv;
  (void)rank_ordered;
  fail(StatusCode::kUnsupported,
       "started by mpirun, but this build has no MPI (rebuild with libopenmpi-dev installed, "
       "SHARDLM_MPI=ON)");
#endif
}

ProcessGroup::~ProcessGroup() {
  comm_.reset();  // the communicator before MPI_Finalize
  mpi_.reset();
}

int ProcessGroup::rank() const {
  return comm_ ? comm_->rank() : 0;
}

int ProcessGroup::local_rank() const {
  if (!comm_) return -1;
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"}) {
    if (const char* s = std::getenv(v)) return std::atoi(s);
  }
  return -1;
}

int ProcessGroup::size() const {
  return comm_ ? comm_->size() : 1;
}

bool ProcessGroup::launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

}  // namespace shardlm::apps
