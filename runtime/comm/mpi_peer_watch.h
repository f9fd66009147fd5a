// Naming the rank that died when mpirun stops a job. When one MPI process dies (a crash, the OOM
// killer, kill -9), Open MPI's launcher stops the others with SIGTERM; without this, the survivors
// die silently and only mpirun's own banner says which rank it was. watch_mpi_peers() learns
// every rank's host and pid (one collective over the communicator) and installs a SIGTERM
// handler that, before the process ends, writes one line naming the ranks on this host that are
// gone, e.g.
//   shardlm-run: error (comm): mpi rank 0: rank 1 (pid 4242 on node-a) has ended (killed or
//   crashed); mpirun is stopping the job
// and then ends by SIGTERM as it would have without the handler (same exit status). Ranks on
// other hosts cannot be checked from here; the line then says the launcher stopped the job.
// The handler is installed only where SIGTERM still has its default action, so a program with
// its own (shardlm-serve's graceful shutdown) keeps it. Not the collective timeout (a hung rank:
// MpiCommunicator) and not a launcher.
#pragma once

#include <mpi.h>

namespace shardlm {

// Collective over comm (every rank calls it, e.g. right after creating its communicator).
// Later calls replace the peer list (the last communicator's ranks are named).
void watch_mpi_peers(MPI_Comm comm);

}  // namespace shardlm
