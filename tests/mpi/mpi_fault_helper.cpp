// A helper program for mpi_fault_test (run by it under mpirun -n 2, not a test itself): rank 0
// drives generation requests over ranks as processes for up to 60 s; rank 1 serves steps and,
// one second in, kills itself (mode kill: SIGKILL), stops (mode hang: SIGSTOP) or sends SIGTERM
// to its parent, the launcher (mode interrupt: as a user stopping mpirun). Rank 0 must then end,
// not hang: by mpirun's job abort (each survivor's SIGTERM handler, mpi_peer_watch, says why) or
// by its collective timeout (3 s here), which it prints as one line before exiting with status 3.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generate.h"

int main(int argc, char** argv) {
  using namespace shardlm;
  if (argc < 3) {
    std::fprintf(stderr, "usage: mpi_fault_helper PACK_DIR kill|hang|interrupt\n");
    return 2;
  }
  MpiRuntime mpi(&argc, &argv);
  const std::string mode = argv[2];
  try {
    EngineOptions eo;
    eo.pack_dir = argv[1];
    eo.n_threads = 1;
    eo.default_sequence = false;
    eo.comm_timeout_seconds = 3;
    eo.process_comm = make_mpi_communicator(MpiReduction::kFast);
    Engine engine(eo);
    if (!engine.drives()) {
      std::thread([mode] {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (mode == "interrupt") {
          kill(getppid(), SIGTERM);
        } else {
          raise(mode == "kill" ? SIGKILL : SIGSTOP);
        }
      }).detach();
      engine.serve_steps();
      return 0;
    }
    const auto start = std::chrono::steady_clock::now();
    GenerateOptions go;
    go.max_new_tokens = 64;
    go.ignore_eos = true;
    const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
      generate(engine, prompt, go);
    }
    std::printf("mpi_fault_helper: rank 0 ran 60 s without noticing the failure\n");
    return 0;
  } catch (const Error& e) {
    std::printf("mpi_fault_helper: rank %d: %s\n", mpi.rank(), e.what());
    std::fflush(stdout);
    return 3;
  }
}
