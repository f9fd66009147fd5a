// allowed_cpus_by_core reads the affinity mask with sched_getaffinity and each CPU's core from
// /sys/devices/system/cpu/cpuN/topology (physical_package_id, core_id); a CPU whose topology is
// missing counts as a core of its own.
#include "runtime/core/cpu_affinity.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace shardlm {

namespace {

#if defined(__linux__)
// -1 when the file is missing or unreadable.
long read_topology(int cpu, const char* field) {
  std::ifstream in("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/" + field);
  long v = -1;
  if (!(in >> v)) return -1;
  return v;
}

std::vector<int> cpus_in(const cpu_set_t& set) {
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}
#endif

}  // namespace

std::vector<int> allowed_cpus_by_core() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return {};
  const std::vector<int> cpus = cpus_in(set);
  // Per core (package, core id; unknown: a core of its own), its CPUs in ascending order.
  std::map<std::pair<long, long>, std::vector<int>> by_core;
  std::vector<std::pair<long, long>> core_order;  // cores by their lowest CPU
  for (int c : cpus) {
    const long package = read_topology(c, "physical_package_id");
    const long core = read_topology(c, "core_id");
    const std::pair<long, long> key =
        core < 0 ? std::pair<long, long>{-1 - c, -1} : std::pair<long, long>{package, core};
    auto& list = by_core[key];
    if (list.empty()) core_order.push_back(key);
    list.push_back(c);
  }
  std::vector<int> out;
  for (size_t level = 0; out.size() < cpus.size(); ++level) {
    for (const auto& key : core_order) {
      const auto& list = by_core[key];
      if (level < list.size()) out.push_back(list[level]);
    }
  }
  return out;
#else
  return {};
#endif
}

std::vector<int> worker_cpus_for_rank(const std::vector<int>& allowed, int rank, int n_ranks,
                                      int n_threads) {
  if (n_threads <= 1 || rank < 0 || n_ranks < 1) return {};
  if (static_cast<size_t>(n_ranks) * static_cast<size_t>(n_threads) != allowed.size()) return {};
  const size_t first = static_cast<size_t>(rank) * static_cast<size_t>(n_threads);
  if (first + static_cast<size_t>(n_threads) > allowed.size()) return {};
  return std::vector<int>(allowed.begin() + static_cast<std::ptrdiff_t>(first + 1),
                          allowed.begin() + static_cast<std::ptrdiff_t>(first + n_threads));
}

bool pin_thread(std::thread& thread, int cpu) {
#if defined(__linux__)
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(thread.native_handle(), sizeof(set), &set) == 0;
#else
  (void)thread;
  (void)cpu;
  return false;
#endif
}

std::vector<int> current_thread_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) != 0) return {};
  return cpus_in(set);
#else
  return {};
#endif
}

}  // namespace shardlm
