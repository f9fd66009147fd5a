// /proc/self/status parsing.
#include "apps/shardlm-bench/proc_mem.h"

#include <fstream>
#include <string>

namespace shardlm::bench {

namespace {

uint64_t rollup_kib(const std::string& field) {
  std::ifstream f("/proc/self/smaps_rollup");
  std::string key;
  uint64_t kib = 0;
  while (f >> key) {
    if (key == field) {
      f >> kib;
      return kib;
    }
    f.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

ProcMem read_proc_mem() {
  ProcMem m;
  m.file_pmd_mapped = rollup_kib("FilePmdMapped:") * 1024;
  std::ifstream f("/proc/self/status");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (f >> key) {
    if (key == "VmHWM:" || key == "VmRSS:" || key == "RssAnon:" || key == "RssFile:") {
      f >> kib >> unit;
      const uint64_t bytes = kib * 1024;
      if (key == "VmHWM:") m.peak_rss = bytes;
      if (key == "VmRSS:") m.rss = bytes;
      if (key == "RssAnon:") m.rss_anon = bytes;
      if (key == "RssFile:") m.rss_file = bytes;
    }
    f.ignore(1 << 20, '\n');
  }
  return m;
}

}  // namespace shardlm::bench
