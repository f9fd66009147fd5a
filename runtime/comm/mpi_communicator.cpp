// MpiCommunicator: MPI collectives on host buffers; the rank-ordered reduction mirrors the
// threads communicator's chunked, rank-ordered sum.
#include "runtime/comm/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/core/status.h"

namespace shardlm {

namespace {

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
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce_sum(float* data, int64_t n, MemorySpace space) override {
    require_host(space, "the mpi communicator");
    if (size_ == 1 || n <= 0) return;
    if (reduction_ == MpiReduction::kFast) {
      check_int(n, "all_reduce");
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_),
                "all_reduce of " + std::to_string(n) + " floats", rank_);
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
    mpi_check(MPI_Allgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm_),
              "all_gather (sizes)", rank_);
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[static_cast<size_t>(r)] = static_cast<int>(total);
      total += sizes[static_cast<size_t>(r)];
    }
    if (total != static_cast<int64_t>(recv_bytes)) {
      fail(StatusCode::kComm, "all_gather: ranks sent " + std::to_string(total) +
                                  " bytes in all, rank " + std::to_string(rank_) + " expected " +
                                  std::to_string(recv_bytes));
    }
    check_int(total, "all_gather");
    mpi_check(MPI_Allgatherv(send, mine, MPI_BYTE, recv, sizes.data(), offsets.data(), MPI_BYTE,
                             comm_),
              "all_gather of " + std::to_string(total) + " bytes", rank_);
  }

  void broadcast(void* data, size_t bytes, int root, MemorySpace space) override {
    require_host(space, "the mpi communicator");
    if (root < 0 || root >= size_) {
      fail(StatusCode::kComm,
           "broadcast from rank " + std::to_string(root) + " of " + std::to_string(size_));
    }
    // The size travels first so a mismatch is an error on every rank, not a truncation.
    uint64_t root_bytes = bytes;
    mpi_check(MPI_Bcast(&root_bytes, 1, MPI_UINT64_T, root, comm_), "broadcast (size)", rank_);
    if (root_bytes != bytes) {
      fail(StatusCode::kComm, "broadcast: root sent " + std::to_string(root_bytes) +
                                  " bytes, rank " + std::to_string(rank_) + " expected " +
                                  std::to_string(bytes));
    }
    check_int(static_cast<int64_t>(bytes), "broadcast");
    mpi_check(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_),
              "broadcast of " + std::to_string(bytes) + " bytes", rank_);
  }

  void barrier() override { mpi_check(MPI_Barrier(comm_), "barrier", rank_); }

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
    mpi_check(MPI_Alltoallv(data, counts.data(), displs.data(), MPI_FLOAT, parts_.data(),
                            recv_counts.data(), recv_displs.data(), MPI_FLOAT, comm_),
              "all_reduce (scatter of " + std::to_string(n) + " floats)", rank_);
    sum_.assign(static_cast<size_t>(my_count), 0.0f);
    for (int r = 0; r < size_; ++r) {
      const float* src = parts_.data() + static_cast<size_t>(r) * static_cast<size_t>(my_count);
      for (int i = 0; i < my_count; ++i) sum_[static_cast<size_t>(i)] += src[i];
    }
    mpi_check(MPI_Allgatherv(sum_.data(), my_count, MPI_FLOAT, data, counts.data(), displs.data(),
                             MPI_FLOAT, comm_),
              "all_reduce (gather of " + std::to_string(n) + " floats)", rank_);
  }

  MpiReduction reduction_;
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
      fail(StatusCode::kComm,
           "this MPI library gives thread level " + std::to_string(provided) +
               "; shardlm needs MPI_THREAD_SERIALIZED or higher");
    }
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiRuntime::~MpiRuntime() {
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
