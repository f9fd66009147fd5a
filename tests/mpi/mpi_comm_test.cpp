// The MPI communicator, run under mpirun with N processes: the rank-ordered reduction gives the
// threads communicator's bits (an in-process ThreadGroup of N threads on the same values), the fast
// reduction the same bits on every rank and the sum within f32 error, variable-size all_gather,
// broadcast, size mismatches refused with a message, device memory refused. A custom main
// initializes MPI; only rank 0 prints, and the exit code is non-zero when any rank failed.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <mpi.h>

#include <cstdio>

#include "runtime/comm/mpi_communicator.h"
#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"

namespace shardlm {
namespace {

std::vector<float> values_of(int rank, int64_t n) {
  std::mt19937 rng(1000 + static_cast<unsigned>(rank));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng) * std::pow(10.0f, static_cast<float>(rank % 3));  // mixed scales
  return v;
}

// What the in-process threads communicator gives for the same per-rank values: `size` threads
// of one ThreadGroup, rank 0's result.
std::vector<float> rank_ordered_expected(int size, int64_t n) {
  ThreadGroup group(size);
  std::vector<std::vector<float>> v(static_cast<size_t>(size));
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      v[static_cast<size_t>(r)] = values_of(r, n);
      group.communicator(r)->all_reduce_sum(v[static_cast<size_t>(r)].data(), n);
    });
  }
  for (auto& t : threads) t.join();
  return v[0];
}

TEST(MpiCommunicator, RankOrderedSumIsTheThreadsCommunicatorsBits) {
  auto c = make_mpi_communicator(MpiReduction::kRankOrdered);
  ASSERT_GE(c->size(), 2) << "run under mpirun -n 2 or more";
  for (int64_t n : {int64_t{1}, int64_t{3}, int64_t{7}, int64_t{1000}, int64_t{16 * 1024 + 3}}) {
    std::vector<float> v = values_of(c->rank(), n);
    c->all_reduce_sum(v.data(), n);
    const std::vector<float> want = rank_ordered_expected(c->size(), n);
    EXPECT_EQ(0, std::memcmp(v.data(), want.data(), v.size() * sizeof(float))) << "n " << n;
  }
}

TEST(MpiCommunicator, FastSumIsTheSameOnEveryRankAndCloseToTheOrderedOne) {
  auto c = make_mpi_communicator(MpiReduction::kFast);
  const int64_t n = 4096 + 5;
  std::vector<float> v = values_of(c->rank(), n);
  c->all_reduce_sum(v.data(), n);
  const std::vector<float> want = rank_ordered_expected(c->size(), n);
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_NEAR(v[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << "element " << i;
  }
  std::vector<float> all(v.size() * static_cast<size_t>(c->size()));
  c->all_gather(v.data(), v.size() * sizeof(float), all.data(), all.size() * sizeof(float));
  for (int r = 0; r < c->size(); ++r) {
    EXPECT_EQ(0, std::memcmp(all.data() + static_cast<size_t>(r) * v.size(), v.data(),
                             v.size() * sizeof(float)))
        << "rank " << r << " got other bits";
  }
}

TEST(MpiCommunicator, AllGatherOfDifferentSizesAndBroadcast) {
  auto c = make_mpi_communicator(MpiReduction::kFast);
  const int n = c->size();
  std::vector<float> mine(static_cast<size_t>(c->rank() + 1), static_cast<float>(c->rank()) + 0.5f);
  std::vector<float> all(static_cast<size_t>(n * (n + 1) / 2), -1.0f);
  c->all_gather(mine.data(), mine.size() * sizeof(float), all.data(), all.size() * sizeof(float));
  size_t at = 0;
  for (int r = 0; r < n; ++r) {
    for (int i = 0; i <= r; ++i) EXPECT_EQ(all[at++], static_cast<float>(r) + 0.5f);
  }
  std::vector<uint8_t> b(333, static_cast<uint8_t>(c->rank()));
  c->broadcast(b.data(), b.size(), n - 1);
  for (uint8_t x : b) ASSERT_EQ(x, static_cast<uint8_t>(n - 1));
  c->barrier();
}

TEST(MpiCommunicator, MismatchesAndDeviceMemoryAreRefusedWithAMessage) {
  auto c = make_mpi_communicator(MpiReduction::kFast);
  // all_gather: this rank expects one float too many.
  float one = 1.0f;
  std::vector<float> all(static_cast<size_t>(c->size()) + 1);
  try {
    c->all_gather(&one, sizeof one, all.data(), all.size() * sizeof(float));
    ADD_FAILURE() << "accepted a wrong recv size";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kComm);
    EXPECT_NE(std::string(e.what()).find("expected"), std::string::npos) << e.what();
  }
  // broadcast: ranks disagree on the size (the root's size wins the check on every rank).
  std::vector<uint8_t> b(c->rank() == 0 ? 8 : 16);
  if (c->rank() == 0) {
    c->broadcast(b.data(), b.size(), 0);
  } else {
    EXPECT_THROW(c->broadcast(b.data(), b.size(), 0), Error);
  }
  EXPECT_THROW(c->all_reduce_sum(&one, 1, MemorySpace::kDevice), Error);
  c->barrier();  // still usable
}

TEST(MpiCommunicator, ACollectiveAPeerJoinsTooLateForTimesOutWithAMessage) {
  auto c = make_mpi_communicator(MpiReduction::kFast);
  float x = 1.0f;
  if (c->rank() == 0) {
    c->set_timeout(1);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      c->all_reduce_sum(&x, 1);
      ADD_FAILURE() << "no timeout";
    } catch (const Error& e) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_EQ(e.code(), StatusCode::kComm);
      EXPECT_NE(std::string(e.what()).find("did not complete within 1 s"), std::string::npos)
          << e.what();
      EXPECT_GE(s, 1.0);
      EXPECT_LT(s, 5.0);
    }
    EXPECT_THROW(c->barrier(), Error);  // unusable after the timeout
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    c->set_timeout(30);
    c->all_reduce_sum(&x, 1);  // completes once rank 0 drives MPI again (main's barrier)
  }
}

}  // namespace
}  // namespace shardlm

int main(int argc, char** argv) {
  shardlm::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int mine = RUN_ALL_TESTS();
  int any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (mpi.rank() == 0 && any != mine) std::fprintf(stderr, "mpi_comm_test: another rank failed\n");
  return any;
}
