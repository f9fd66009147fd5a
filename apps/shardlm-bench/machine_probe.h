// Machine probes of shardlm-bench: the memory bandwidth and peak arithmetic rates that the
// roofline fractions are computed against, measured on this machine with the same number of
// threads as the run. Not a general benchmark suite: a few tight loops, best of `reps`.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace shardlm::bench {

// A byte range to stream (e.g. one weight tensor inside a mapped pack).
struct Region {
  const void* data;
  size_t bytes;
};

// Streams every region once per pass on `n_threads` threads, each region split into one equal
// slice per thread, each slice read as 1, 4 or 8 interleaved sequential streams with AVX-512
// loads, with and without software prefetch 1 KiB ahead (plain loads elsewhere), and returns
// the best (variant, pass) in GB/s. On the pack's
// own weights this is decode's access pattern without the arithmetic: same pages, same
// mappings, same thread count.
double read_regions_gbs(const std::vector<Region>& regions, int n_threads, int passes);

// STREAM-style triad a = b + s * c over three anonymous arrays (huge pages requested), with
// non-temporal stores where the CPU has AVX-512 so that the counted bytes (3 arrays) are the
// bytes that cross the memory bus. Allocated once, run between measured runs.
class TriadProbe {
 public:
  TriadProbe(size_t total_bytes, int n_threads);
  ~TriadProbe();
  double run_gbs(int passes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct Bandwidth {
  double read_gbs = 0;             // every thread sums its slice of one buffer (bytes read)
  double read_one_thread_gbs = 0;  // one thread sums the whole buffer: a core's read ceiling
  double copy_gbs = 0;             // memcpy per thread slice (bytes read + bytes written)
  double triad_gbs = 0;            // a = b + s * c with non-temporal stores (3 arrays' bytes)
  double best_gbs() const;
  std::string best_kind() const;
};

struct PeakFlops {
  double f32_gflops = 0;   // f32 FMA (AVX-512, AVX2 or scalar), all threads
  double bf16_gflops = 0;  // bf16 dot products with f32 accumulation: AMX tiles, else
                           // AVX-512 BF16 vdpbf16ps; 0 when the CPU has neither
  std::string f32_method, bf16_method;
};

// `total_mib` is the footprint of each test (the triad splits it over three arrays); it should
// be well above the last-level cache. Anonymous memory, transparent huge pages requested.
Bandwidth measure_bandwidth(int n_threads, size_t total_mib, int reps);
PeakFlops measure_peak_flops(int n_threads, int reps);

}  // namespace shardlm::bench
