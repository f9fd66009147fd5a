// The threads communicator: all-reduce, all-gather with uneven sizes, broadcast, and a failing
// rank that must not deadlock the others; with rank 0 on the calling thread as well.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"

namespace shardlm {
namespace {

class RankThreadsTest : public ::testing::TestWithParam<bool> {};  // caller_runs_rank0

TEST_P(RankThreadsTest, AllReduceGatherBroadcast) {
  for (int n : {1, 2, 3, 4}) {
    ThreadGroup group(n);
    RankThreads threads(n, &group, GetParam());
    const std::thread::id caller = std::this_thread::get_id();
    std::vector<std::unique_ptr<Communicator>> comms;
    for (int r = 0; r < n; ++r) comms.push_back(group.communicator(r));
    std::vector<std::vector<float>> sums(n);
    threads.run([&](int r) {
      Communicator& c = *comms[static_cast<size_t>(r)];
      EXPECT_EQ(std::this_thread::get_id() == caller, GetParam() && r == 0) << "rank " << r;
      EXPECT_EQ(c.rank(), r);
      EXPECT_EQ(c.size(), n);
      std::vector<float> v(7);
      for (int i = 0; i < 7; ++i) v[i] = static_cast<float>((r + 1) * (i + 1));
      c.all_reduce_sum(v.data(), 7);
      sums[static_cast<size_t>(r)] = v;
      // uneven all-gather: rank r sends r + 1 ints equal to r
      std::vector<int32_t> send(static_cast<size_t>(r + 1), r);
      std::vector<int32_t> recv(static_cast<size_t>(n * (n + 1) / 2));
      c.all_gather(send.data(), send.size() * 4, recv.data(), recv.size() * 4);
      size_t k = 0;
      for (int s = 0; s < n; ++s) {
        for (int j = 0; j <= s; ++j) EXPECT_EQ(recv[k++], s);
      }
      int64_t value = r == n - 1 ? 42 : -1;
      c.broadcast(&value, sizeof value, n - 1);
      EXPECT_EQ(value, 42);
      c.barrier();
    });
    const float tri = static_cast<float>(n * (n + 1) / 2);
    for (int r = 0; r < n; ++r) {
      for (int i = 0; i < 7; ++i) EXPECT_EQ(sums[r][i], tri * (i + 1));
    }
  }
}

TEST_P(RankThreadsTest, FailingRankAbortsOthersAndErrorReachesCaller) {
  for (int failing : {0, 1, 2}) {  // 0: the caller's own rank when GetParam()
    ThreadGroup group(3);
    RankThreads threads(3, &group, GetParam());
    std::vector<std::unique_ptr<Communicator>> comms;
    for (int r = 0; r < 3; ++r) comms.push_back(group.communicator(r));
    try {
      threads.run([&](int r) {
        if (r == failing) fail(StatusCode::kFormat, "rank " + std::to_string(r) + " broke");
        float x = 1;
        comms[static_cast<size_t>(r)]->all_reduce_sum(&x, 1);  // would wait forever for it
      });
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kFormat);
      EXPECT_EQ(std::string(e.what()), "rank " + std::to_string(failing) + " broke");
    }
    EXPECT_TRUE(group.aborted());
  }
}

TEST_P(RankThreadsTest, RunsAgainAfterAFailureAndWithoutAGroup) {
  RankThreads threads(2, nullptr, GetParam());
  EXPECT_EQ(threads.size(), 2);
  EXPECT_THROW(threads.run([](int r) {
    if (r == 0) throw std::runtime_error("zero");
  }),
               std::runtime_error);
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) threads.run([&](int r) { ran += r + 1; });
  EXPECT_EQ(ran.load(), 300);
}

INSTANTIATE_TEST_SUITE_P(ThreadsComm, RankThreadsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? std::string("caller_runs_rank0")
                                          : std::string("thread_per_rank");
                         });

TEST(SingleComm, IsANoOp) {
  auto c = make_single_communicator();
  float x = 3;
  c->all_reduce_sum(&x, 1);
  EXPECT_EQ(x, 3);
  int a = 5, b = 0;
  c->all_gather(&a, 4, &b, 4);
  EXPECT_EQ(b, 5);
}

}  // namespace
}  // namespace shardlm
