// The op cases of the op-test harness: every op of the Backend interface on random inputs
// (never zeros) over the shapes, dtypes and edge cases each backend's code paths need (token
// counts on both sides of every GEMV / GEMM and decode / prefill switch, odd sizes, GQA / MQA,
// sliding windows, out-of-shard ids, aliasing, shuffled block tables, ...). Each case computes
// its oracle with kernels/ref and checks the backend's result through OpRun.
// Not backend-specific: no case knows which backend it runs on (beyond bf16 activations,
// which change the oracle).
#pragma once

#include <vector>

#include "tests/ops/op_harness.h"

namespace shardlm::ops_test {

// embed, rms_norm, matmul, rope, attention, swiglu, add, copy_columns, max_element.
std::vector<OpCase> dense_op_cases();
// store_kv and paged_attention (the step engine's ops).
std::vector<OpCase> paged_op_cases();

constexpr DType kAllDtypes[] = {DType::kF32, DType::kF16, DType::kBF16};
// The KV pools' element types (dtype.h is_kv_dtype).
constexpr DType kKvDtypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3};

}  // namespace shardlm::ops_test
