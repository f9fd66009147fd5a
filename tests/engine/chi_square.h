// Test helper: Pearson's chi-square goodness-of-fit test of observed counts against exact
// probabilities. Cells whose expected count is below 5 are pooled into one cell; an observation in
// a cell of probability 0 gives p-value 0 (an impossible outcome). Header-only, tests only.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace shardlm::test {

// Regularized upper incomplete gamma Q(a, x) (series below a + 1, Lentz continued fraction above).
inline double gamma_q(double a, double x) {
  if (x <= 0) return 1.0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 100000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * 1e-16) break;
    }
    return 1.0 - sum * std::exp(log_prefix);
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-16) break;
  }
  return std::exp(log_prefix) * h;
}

// p-value of observing `counts` (one per cell) when cell i has probability probs[i].
inline double chi_square_p_value(const std::vector<double>& probs,
                                 const std::vector<int64_t>& counts) {
  double n = 0, total_p = 0;
  for (int64_t c : counts) n += static_cast<double>(c);
  for (double p : probs) total_p += p;
  double stat = 0, pooled_e = 0, pooled_o = 0;
  int cells = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const double e = n * probs[i] / total_p;
    const double o = static_cast<double>(counts[i]);
    if (e == 0) {
      if (o > 0) return 0.0;
      continue;
    }
    if (e < 5) {
      pooled_e += e;
      pooled_o += o;
      continue;
    }
    stat += (o - e) * (o - e) / e;
    ++cells;
  }
  if (pooled_e > 0) {
    stat += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
    ++cells;
  }
  if (cells < 2) return 1.0;
  return gamma_q(0.5 * (cells - 1), 0.5 * stat);
}

}  // namespace shardlm::test
