// Machine probes of shardlm-bench: the memory bandwidth and peak arithmetic rates that the
// roofline fractions are computed against, measured on this machine with the same number of
// threads as the run. Not a general benchmark suite: a few tight loops, best of `reps`.
#pragma once

#include <string>

namespace shardlm::bench {

struct Bandwidth {
  double read_gbs = 0;   // every thread sums its slice of one buffer (bytes read)
  double copy_gbs = 0;   // memcpy per thread slice (bytes read + bytes written)
  double triad_gbs = 0;  // a = b + s * c with non-temporal stores (3 arrays' bytes)
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
