// Percentiles and a small summary (count, mean, min, max, p50/p90/p99) of a set of latencies.
// The percentile interpolates linearly between the two nearest ranks, as numpy.percentile does by
// default: rank = p / 100 * (n - 1) over the sorted values. Units are the caller's. Not a
// histogram and not thread-safe accumulation: the caller collects the values first.
#pragma once

#include <cstddef>
#include <vector>

namespace shardlm::serve_bench {

// The p-th percentile (p in [0, 100], clamped) of `values`; 0 when `values` is empty.
double percentile(std::vector<double> values, double p);

struct Summary {
  size_t count = 0;  // 0: no values, every other field is 0
  double mean = 0, min = 0, max = 0, p50 = 0, p90 = 0, p99 = 0;
};

Summary summarize(const std::vector<double>& values);

}  // namespace shardlm::serve_bench
