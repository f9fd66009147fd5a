// time_all_reduce: warm-up, then `reps` timed calls separated by barriers; the median.
#include "apps/shardlm-bench/comm_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "runtime/comm/thread_group.h"

namespace shardlm::bench {

AllReduceTime time_all_reduce(Communicator& comm, int64_t n, int reps) {
  std::vector<float> buf(static_cast<size_t>(n), 1.0f);
  for (int i = 0; i < 3; ++i) comm.all_reduce_sum(buf.data(), n);
  std::vector<double> us;
  for (int i = 0; i < reps; ++i) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    comm.all_reduce_sum(buf.data(), n);
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  AllReduceTime t;
  t.bytes = n * static_cast<int64_t>(sizeof(float));
  t.median_us = us[us.size() / 2];
  t.gbs = static_cast<double>(t.bytes) / (t.median_us * 1e3);
  return t;
}

AllReduceTime time_threads_all_reduce(int tp, int64_t n, int reps) {
  ThreadGroup group(tp);
  std::vector<AllReduceTime> per(static_cast<size_t>(tp));
  std::vector<std::thread> threads;
  for (int r = 0; r < tp; ++r) {
    threads.emplace_back([&, r] {
      auto c = group.communicator(r);
      per[static_cast<size_t>(r)] = time_all_reduce(*c, n, reps);
    });
  }
  for (auto& t : threads) t.join();
  return per[0];
}

std::string describe(const AllReduceTime& t) {
  char b[96];
  const double kib = static_cast<double>(t.bytes) / 1024;
  if (kib < 1024) {
    std::snprintf(b, sizeof b, "%.1f KiB %.1f us", kib, t.median_us);
  } else {
    std::snprintf(b, sizeof b, "%.1f MiB %.1f us = %.2f GB/s", kib / 1024, t.median_us, t.gbs);
  }
  return b;
}

}  // namespace shardlm::bench
