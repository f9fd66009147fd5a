// MpiCommunicator: MPI collectives on host buffers; the rank-ordered reduction mirrors the
// threads communicator's chunked, rank-ordered sum.
#include "runtime/comm/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/comm/mpi_peer_watch.h"
#include "runtime/core/status.h"

namespace shardlm {

namespace {

// Collectives given up on after a timeout. While one is incomplete a peer is dead or hung, so
// MPI_Finalize (a collective in practice) would hang too: the process ends without it and the
// launcher stops the job. (A late peer may still complete them, as the timeout test's does.)
std::mutex g_abandoned_mu;
std::vector<MPI_Request> g_abandoned;

bool abandoned_collectives_pending() {
  std::lock_guard<std::mutex> lock(g_abandoned_mu);
  for (MPI_Request& r : g_abandoned) {
    int done = 0;
    if (r != MPI_REQUEST_NULL && MPI_Test(&r, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done) {
      return true;
    }
  }
  return false;
}

void mpi_check(int code, const std::string& what, int rank) {
  if (code == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, msg, &len);
  fail(StatusCode::kComm,
       "mpi rank " + std::to_string(rank) + ": " + what + " failed: " + std::string(msg, len));
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MpiReduction reduction) : reduction_(reduction) {
    mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup", -1);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    watch_mpi_peers(comm_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    // A collective given up on still refers to the communicator: it is left to the process's
    // end (MpiRuntime decides whether MPI can be finalized).
    if (gave_up_) return;
    MPI_Comm_free(&comm_);
  }

  void set_timeout(double seconds) override { timeout_ = seconds > 0 ? seconds : 0; }
  bool spans_processes() const override { return true; }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce_sum(float* data, int64_t n, MemorySpace space) override {
    require_host(space, "the mpi communicator");
    if (size_ == 1 || n <= 0) return;
    if (reduction_ == MpiReduction::kFast) {
      check_int(n, "all_reduce");
      MPI_Request req;
      mpi_check(
          MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_, &req),
          "all_reduce of " + std::to_string(n) + " floats", rank_);
      wait(req, "all_reduce of " + std::to_string(n) + " floats");
      return;
    }
    rank_ordered_sum(data, n);
  }

  void all_gather(const void* send, size_t send_bytes, void* recv, size_t recv_bytes,
                  MemorySpace space) override {
    require_host(space, "the mpi communicator");
    check_int(static_cast<int64_t>(send_bytes), "all_gather");
    const int mine = static_cast<int>(send_bytes);
    std::vector<int> sizes(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    MPI_Request req;
    mpi_check(MPI_Iallgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm_, &req),
              "all_gather (sizes)", rank_);
    wait(req, "all_gather (sizes)");
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[static_cast<size_t>(r)] = static_cast<int>(total);
      total += sizes[static_cast<size_t>(r)];
    }
    check_int(total, "all_gather");
    // A rank whose buffer is the wrong size still takes part (into scratch), so the others
    // complete, then reports.
    const bool ok = total == static_cast<int64_t>(recv_bytes);
    std::vector<uint8_t> scratch(ok ? 0 : static_cast<size_t>(total));
    mpi_check(MPI_Iallgatherv(send, mine, MPI_BYTE, ok ? recv : scratch.data(), sizes.data(),
                              offsets.data(), MPI_BYTE, comm_, &req),
              "all_gather of " + std::to_string(total) + " bytes", rank_);
    wait(req, "all_gather of " + std::to_string(total) + " bytes");
    if (!ok) {
      fail(StatusCode::kComm, "all_gather: ranks sent " + std::to_string(total) +
                                  " bytes in all, rank " + std::to_string(rank_) + " expected " +
                                  std::to_string(recv_bytes));
    }
  }

  void broadcast(void* data, size_t bytes, int root, MemorySpace space) override {
    require_host(space, "the mpi communicator");
    if (root < 0 || root >= size_) {
      fail(StatusCode::kComm,
           "broadcast from rank " + std::to_string(root) + " of " + std::to_string(size_));
    }
    // The size travels first so a mismatch is an error on every rank, not a truncation.
    uint64_t root_bytes = bytes;
    MPI_Request req;
    mpi_check(MPI_Ibcast(&root_bytes, 1, MPI_UINT64_T, root, comm_, &req), "broadcast (size)",
              rank_);
    wait(req, "broadcast (size) from rank " + std::to_string(root));
    check_int(static_cast<int64_t>(root_bytes), "broadcast");
    // A rank expecting another size still receives (into scratch), so the root completes.
    const bool ok = root_bytes == bytes;
    std::vector<uint8_t> scratch(ok ? 0 : static_cast<size_t>(root_bytes));
    mpi_check(MPI_Ibcast(ok ? data : scratch.data(), static_cast<int>(root_bytes), MPI_BYTE, root,
                         comm_, &req),
              "broadcast of " + std::to_string(root_bytes) + " bytes", rank_);
    wait(req, "broadcast of " + std::to_string(root_bytes) + " bytes");
    if (!ok) {
      fail(StatusCode::kComm, "broadcast: root sent " + std::to_string(root_bytes) +
                                  " bytes, rank " + std::to_string(rank_) + " expected " +
                                  std::to_string(bytes));
    }
  }

  void barrier() override {
    MPI_Request req;
    mpi_check(MPI_Ibarrier(comm_, &req), "barrier", rank_);
    wait(req, "barrier");
  }

 private:
  void check_int(int64_t n, const char* what) const {
    if (n > 0x7fffffff) {
      fail(StatusCode::kComm, std::string(what) + ": " + std::to_string(n) +
                                  " elements exceed one MPI call's int count");
    }
  }

  // Chunk r = [r * chunk, min(n, (r + 1) * chunk)) is summed by rank r over every rank's chunk
  // in rank order, starting from 0.0f (the threads communicator's arithmetic), then gathered.
  void rank_ordered_sum(float* data, int64_t n) {
    check_int(n, "all_reduce");
    const int64_t chunk = (n + size_ - 1) / size_;
    std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      const int64_t b = std::min<int64_t>(n, chunk * r), e = std::min<int64_t>(n, b + chunk);
      counts[static_cast<size_t>(r)] = static_cast<int>(e - b);
      displs[static_cast<size_t>(r)] = static_cast<int>(b);
    }
    const int my_count = counts[static_cast<size_t>(rank_)];
    // Every rank sends chunk r of its buffer to rank r; this rank receives its chunk from all.
    std::vector<int> recv_counts(static_cast<size_t>(size_), my_count);
    std::vector<int> recv_displs(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) recv_displs[static_cast<size_t>(r)] = r * my_count;
    parts_.resize(static_cast<size_t>(my_count) * static_cast<size_t>(size_));
    MPI_Request req;
    mpi_check(MPI_Ialltoallv(data, counts.data(), displs.data(), MPI_FLOAT, parts_.data(),
                             recv_counts.data(), recv_displs.data(), MPI_FLOAT, comm_, &req),
              "all_reduce (scatter of " + std::to_string(n) + " floats)", rank_);
    wait(req, "all_reduce (scatter of " + std::to_string(n) + " floats)");
    sum_.assign(static_cast<size_t>(my_count), 0.0f);
    for (int r = 0; r < size_; ++r) {
      const float* src = parts_.data() + static_cast<size_t>(r) * static_cast<size_t>(my_count);
      for (int i = 0; i < my_count; ++i) sum_[static_cast<size_t>(i)] += src[i];
    }
    mpi_check(MPI_Iallgatherv(sum_.data(), my_count, MPI_FLOAT, data, counts.data(), displs.data(),
                              MPI_FLOAT, comm_, &req),
              "all_reduce (gather of " + std::to_string(n) + " floats)", rank_);
    wait(req, "all_reduce (gather of " + std::to_string(n) + " floats)");
  }

  // Completes `req`: polls (spinning first, then sleeping 100 us between tests, so an idle rank
  // waiting for work does not burn a core) and gives up after the timeout, leaving the
  // communicator unusable (the process is expected to end; mpirun then stops the others).
  void wait(MPI_Request& req, const std::string& what) {
    if (gave_up_) {
      fail(StatusCode::kComm, "mpi rank " + std::to_string(rank_) +
                                  ": the communicator is unusable after an earlier timeout");
    }
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    for (int polls = 0;; ++polls) {
      int done = 0;
      mpi_check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), what, rank_);
      if (done) return;
      if (polls < 20000) continue;  // spin first: collectives of a step take microseconds
      answer_pings();
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (timeout_ > 0 && waited > timeout_) {
        gave_up_ = true;
        {
          std::lock_guard<std::mutex> lock(g_abandoned_mu);
          g_abandoned.push_back(req);
        }
        fail(StatusCode::kComm, "mpi rank " + std::to_string(rank_) + ": " + what +
                                    " did not complete within " +
                                    std::to_string(static_cast<int>(timeout_)) + " s; " +
                                    silent_ranks() + ", stopping");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  // Liveness pings on a tag of their own: a rank waiting in a collective answers them, so after
  // a timeout the ranks that do not answer are the dead or hung ones.
  static constexpr int kPingTag = 0x5e1f, kPongTag = 0x5e20;

  void answer_pings() {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      if (MPI_Iprobe(MPI_ANY_SOURCE, kPingTag, comm_, &flag, &st) != MPI_SUCCESS || !flag) return;
      char b = 0;
      MPI_Recv(&b, 1, MPI_CHAR, st.MPI_SOURCE, kPingTag, comm_, MPI_STATUS_IGNORE);
      MPI_Request r;
      MPI_Isend(&pong_, 1, MPI_CHAR, st.MPI_SOURCE, kPongTag, comm_, &r);
      MPI_Request_free(&r);
    }
  }

  // Pings every other rank and waits up to 3 s for the answers: "rank 1 did not answer (dead or
  // hung)", or a note that all answered (then one was only slow).
  std::string silent_ranks() {
    static const char ping = 1;
    std::vector<MPI_Request> recv(static_cast<size_t>(size_), MPI_REQUEST_NULL);
    std::vector<char> got(static_cast<size_t>(size_), 0), replies(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      MPI_Request s;
      MPI_Isend(&ping, 1, MPI_CHAR, r, kPingTag, comm_, &s);
      MPI_Request_free(&s);
      MPI_Irecv(&replies[static_cast<size_t>(r)], 1, MPI_CHAR, r, kPongTag, comm_,
                &recv[static_cast<size_t>(r)]);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < until) {
      answer_pings();
      bool all = true;
      for (int r = 0; r < size_; ++r) {
        if (r == rank_ || got[static_cast<size_t>(r)]) continue;
        int done = 0;
        MPI_Test(&recv[static_cast<size_t>(r)], &done, MPI_STATUS_IGNORE);
        got[static_cast<size_t>(r)] = static_cast<char>(done);
        all = all && done;
      }
      if (all) return "every other rank answered a ping, so one was only slow (raise the timeout)";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::string silent;
    for (int r = 0; r < size_; ++r) {
      if (r != rank_ && !got[static_cast<size_t>(r)]) {
        silent += (silent.empty() ? "" : ", ") + std::to_string(r);
      }
    }
    return "rank " + silent + " did not answer a ping (dead or hung; see the launcher's messages)";
  }

  MpiReduction reduction_;
  double timeout_ = 0;
  bool gave_up_ = false;  // a collective timed out
  char pong_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<float> parts_, sum_;
};

}  // namespace

const char* mpi_reduction_name(MpiReduction r) {
  return r == MpiReduction::kRankOrdered ? "rank-ordered" : "fast";
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
      fail(StatusCode::kComm, "MPI_Init_thread failed");
    }
    owns_ = true;
    if (provided < MPI_THREAD_SERIALIZED) {
      MPI_Finalize();
      fail(StatusCode::kComm, "this MPI library gives thread level " + std::to_string(provided) +
                                  "; shardlm needs MPI_THREAD_SERIALIZED or higher");
    }
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiRuntime::~MpiRuntime() {
  if (abandoned_collectives_pending()) return;  // finalizing would wait for a dead or hung rank
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

std::string MpiRuntime::library_version() {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);
  std::string s(v, static_cast<size_t>(len));
  const size_t cut = s.find_first_of(",\n");
  return cut == std::string::npos ? s : s.substr(0, cut);
}

bool MpiRuntime::launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

std::unique_ptr<Communicator> make_mpi_communicator(MpiReduction reduction) {
  return std::make_unique<MpiCommunicator>(reduction);
}

}  // namespace shardlm
