// Process memory figures for shardlm-bench, from /proc/self/status (Linux): peak and current
// resident set, split into file-backed pages (the mapped packs) and anonymous memory (scratch,
// KV cache, copies). Zeros where /proc is unavailable. Not a device-memory query.
#pragma once

#include <cstdint>

namespace shardlm::bench {

struct ProcMem {
  uint64_t peak_rss = 0;  // VmHWM, bytes
  uint64_t rss = 0;       // VmRSS
  uint64_t rss_anon = 0;  // RssAnon
  uint64_t rss_file = 0;  // RssFile
};

ProcMem read_proc_mem();

}  // namespace shardlm::bench
