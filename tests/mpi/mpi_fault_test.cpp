// A rank that dies (SIGKILL) or hangs (SIGSTOP) during generation under mpirun -n 2: rank 0 and
// the job end within 30 s with a message naming what happened, never a hang (mpi_fault_helper
// does the running). Starts mpirun itself; leaves no process behind.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

#include "packer/packer.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {

struct Proc {
  int code;
  std::string out;
  double seconds;
};

Proc run_job(const std::string& pack, const std::string& mode) {
  const std::string cmd = std::string("timeout -s KILL 90 ") + SHARDLM_MPIEXEC +
                          " --allow-run-as-root --oversubscribe -n 2 " + SHARDLM_FAULT_HELPER +
                          " " + pack + " " + mode + " 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Whatever happened, no helper survives the test.
  std::system("pkill -KILL -f mpi_fault_helper >/dev/null 2>&1");
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, s};
}

// run_job until its output holds `needle`, at most 3 times; every run must end non-zero within
// 30 s. On this shared VM mpirun has forwarded no line at all now and then (an empty output, in
// 2.3 s, from a job whose rank 0 waits 3 s before it reports): a rank that never says what the
// test wants fails all three runs.
Proc run_job_until(const std::string& pack, const std::string& mode, const std::string& needle) {
  Proc p;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    p = run_job(pack, mode);
    EXPECT_NE(p.code, 0) << "attempt " << attempt << "\n" << p.out;
    EXPECT_LT(p.seconds, 30.0) << "attempt " << attempt << "\n" << p.out;
    if (p.out.find(needle) != std::string::npos) break;
    std::printf("attempt %d: mpirun forwarded no '%s' (output: '%s')\n", attempt, needle.c_str(),
                p.out.c_str());
  }
  return p;
}

class MpiFault : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new testing::TempDir();
    PackOptions o;
    o.model_dir = std::string(SHARDLM_FIXTURES_DIR) + "/hf/qwen3_mqa_f32";
    o.out_dir = (*tmp_) / "pack";
    o.tp_size = 2;
    pack_checkpoint(o);
  }
  static void TearDownTestSuite() { delete tmp_; }
  static inline testing::TempDir* tmp_ = nullptr;
};

TEST_F(MpiFault, AKilledRankEndsTheJobNamingIt) {
  const Proc p = run_job((*tmp_) / "pack", "kill");
  EXPECT_NE(p.code, 0) << p.out;
  EXPECT_LT(p.seconds, 30.0) << p.out;
  // Rank 0's own line (mpi_peer_watch), not only mpirun's banner.
  EXPECT_NE(p.out.find("mpi_fault_helper: error (comm): mpi rank 0: rank 1 (pid "),
            std::string::npos)
      << p.out;
  EXPECT_NE(p.out.find(") has ended (killed or crashed); mpirun is stopping the job"),
            std::string::npos)
      << p.out;
  EXPECT_EQ(p.out.find("ran 60 s without noticing"), std::string::npos) << p.out;
}

// mpirun SIGTERMs every rank at once. The first rank to handle it sees every other one running
// and says the job was interrupted; a rank that handles it after another has already ended names
// that one instead (it cannot tell a crash from the same SIGTERM). Whether the later rank's line
// reaches the output is up to mpirun, which may stop forwarding it or SIGKILL the rank first:
// on a loaded machine rank 0's line was missing in 2 of 8 runs, and in one CI run on a VM shared
// with another tenant neither line was forwarded (an empty output). So one "interrupted" line is
// required, and a rank's own line, where it reaches the output, is that one. A job whose output
// lacks the "interrupted" line is run again (run_job_until).
TEST_F(MpiFault, AnInterruptedJobSaysSo) {
  const std::string interrupted =
      "stopped by SIGTERM from the launcher; every other rank is still running, so the job was "
      "interrupted";
  const Proc p = run_job_until((*tmp_) / "pack", "interrupt", interrupted);
  EXPECT_NE(p.out.find(interrupted), std::string::npos) << p.out;
  for (const std::string rank : {"mpi rank 0: ", "mpi rank 1: "}) {
    // A rank's own (not error) line, where there is one, is the interrupted one.
    const size_t at = p.out.find("mpi_fault_helper: " + rank);
    if (at != std::string::npos) {
      EXPECT_EQ(p.out.find("mpi_fault_helper: " + rank + interrupted), at) << rank << "\n" << p.out;
    }
  }
}

// Rank 0's report is required; a job whose output lacks it is run again (run_job_until).
TEST_F(MpiFault, AHungRankTimesRankZeroOutWithAMessage) {
  const Proc p =
      run_job_until((*tmp_) / "pack", "hang", "mpi_fault_helper: rank 0: mpi rank 0:");
  EXPECT_NE(p.out.find("mpi_fault_helper: rank 0: mpi rank 0:"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("did not complete within 3 s"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("rank 1 did not answer a ping"), std::string::npos) << p.out;
}

}  // namespace
}  // namespace shardlm
