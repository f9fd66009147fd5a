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
  // File pages mapped with 2 MiB page-table entries (smaps_rollup FilePmdMapped): the share of
  // the mapped packs the CPU reads through huge TLB entries.
  uint64_t file_pmd_mapped = 0;
};

ProcMem read_proc_mem();

}  // namespace shardlm::bench
