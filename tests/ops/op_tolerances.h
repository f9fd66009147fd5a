// The op-test harness's tolerance table: how far a backend's op result may be from its
// kernels/ref twin, per op, backend, dtype and token count, with the reason for each entry
// (op_tolerances.cpp). Only the numbers; the comparison itself is OpRun::check (op_harness.h).
#pragma once

#include <cstdint>
#include <string>

#include "runtime/core/dtype.h"
#include "tests/ops/op_harness.h"

namespace shardlm::ops_test {

// Allowed max |got - want| = max(abs, rel * max|want|) + per_term * n_terms. All zero: exact
// (equal values, +0 == -0; NaN never passes).
struct Tolerance {
  float abs = 0;
  float rel = 0;
  float per_term = 0;
  const char* why = "";

  bool exact() const { return abs == 0 && rel == 0 && per_term == 0; }
  float bound(float max_abs_want, int64_t n_terms) const;
};

// The first row of the table that matches. A backend without rows of its own gets the "*" rows
// (the CPU's, the strictest). Rows of "<backend>/bf16act" match only an instance in the bf16
// activation mode (its oracles round the same operands; see OpRun::bf16_activations).
Tolerance tolerance(const std::string& backend, Op op, DType dtype, int64_t n_tokens,
                    bool bf16_activations = false);

}  // namespace shardlm::ops_test
