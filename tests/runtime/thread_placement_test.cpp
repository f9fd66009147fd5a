// Thread placement (runtime/core/cpu_affinity.h): the process's CPUs one per core first, the
// slice of them a rank's pool workers take, and a pool whose workers are pinned there.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/core/cpu_affinity.h"
#include "runtime/core/thread_pool.h"

namespace shardlm {
namespace {

TEST(ThreadPlacementTest, AllowedCpusAreTheAffinityMaskOncePerCpu) {
  const std::vector<int> by_core = allowed_cpus_by_core();
  std::vector<int> sorted = by_core;
  std::sort(sorted.begin(), sorted.end());
  // The calling thread's mask is the process's (nothing here narrowed it).
  EXPECT_EQ(sorted, current_thread_cpus());
  EXPECT_TRUE(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
}

TEST(ThreadPlacementTest, EachRankTakesItsOwnSliceAndLeavesItsFirstCpuToTheCaller) {
  const std::vector<int> allowed = {0, 2, 4, 6, 1, 3, 5, 7};  // one per core, then siblings
  EXPECT_EQ(worker_cpus_for_rank(allowed, 0, 2, 4), (std::vector<int>{2, 4, 6}));
  EXPECT_EQ(worker_cpus_for_rank(allowed, 1, 2, 4), (std::vector<int>{3, 5, 7}));
  EXPECT_EQ(worker_cpus_for_rank(allowed, 0, 1, 8), (std::vector<int>{2, 4, 6, 1, 3, 5, 7}));
  EXPECT_EQ(worker_cpus_for_rank(allowed, 0, 4, 2), (std::vector<int>{2}));
  EXPECT_EQ(worker_cpus_for_rank(allowed, 3, 4, 2), (std::vector<int>{7}));
  // Nothing pinned: fewer threads than CPUs (4 of 8: the engine shares the machine), one thread
  // per rank, more threads than CPUs, a rank past the slices, no CPUs known.
  EXPECT_TRUE(worker_cpus_for_rank(allowed, 0, 1, 4).empty());
  EXPECT_TRUE(worker_cpus_for_rank(allowed, 0, 8, 1).empty());
  EXPECT_TRUE(worker_cpus_for_rank(allowed, 0, 1, 9).empty());
  EXPECT_TRUE(worker_cpus_for_rank(allowed, 2, 2, 4).empty());
  EXPECT_TRUE(worker_cpus_for_rank({}, 0, 1, 2).empty());
  EXPECT_TRUE(worker_cpus_for_rank(allowed, -1, 2, 4).empty());
}

TEST(ThreadPlacementTest, PinnedWorkersRunOnlyOnTheirCpus) {
  const std::vector<int> allowed = allowed_cpus_by_core();
  if (allowed.empty()) GTEST_SKIP() << "the affinity mask cannot be read here";
  const std::vector<int> want = {allowed.back(), allowed.front()};
  ThreadPool pool(3, want);
  ASSERT_EQ(pool.worker_cpus(), want);
  std::mutex mu;
  std::vector<std::vector<int>> seen(3);
  pool.run(3, [&](int thread, int) {
    std::lock_guard<std::mutex> lock(mu);
    seen[static_cast<size_t>(thread)] = current_thread_cpus();
  });
  EXPECT_EQ(seen[1], std::vector<int>{want[0]});
  EXPECT_EQ(seen[2], std::vector<int>{want[1]});
  EXPECT_EQ(seen[0], current_thread_cpus());  // the caller: never pinned
  EXPECT_GT(seen[0].size(), 0u);

  // A CPU the OS refuses leaves that worker unpinned, the others pinned.
  ThreadPool refused(3, {-1, allowed.front()});
  EXPECT_EQ(refused.worker_cpus(), (std::vector<int>{-1, allowed.front()}));
  ThreadPool plain(2);
  EXPECT_EQ(plain.worker_cpus(), std::vector<int>{-1});
}

}  // namespace
}  // namespace shardlm
