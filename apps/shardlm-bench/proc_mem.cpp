// /proc/self/status parsing.
#include "apps/shardlm-bench/proc_mem.h"

#include <fstream>
#include <string>

namespace shardlm::bench {

ProcMem read_proc_mem() {
  ProcMem m;
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
