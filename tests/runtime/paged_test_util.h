// Test helpers for the paged-KV ops (kernels/ref/paged_kv.h), shared by the CPU and CUDA paged
// op tests: one layer's random K/V pools and a source of distinct, shuffled block ids. Header
// only; needs GoogleTest (BlockAlloc checks it is not over-drawn).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/ref/paged_kv.h"
#include "tests/runtime/test_util.h"

namespace shardlm::test {

// K/V pools of one layer, random everywhere (slots no sequence owns hold data too, so a read
// outside a sequence's keys shows up as an error).   k, v [n_slots, n_head_kv, head_dim] (dtype)
struct Pools {
  int64_t n_slots, block_size, n_head_kv, head_dim;
  DType dtype;
  std::vector<uint8_t> k, v;

  Pools(int64_t n_blocks, int64_t bs, int64_t n_head_kv_, int64_t head_dim_, DType dt,
        uint64_t seed)
      : n_slots(n_blocks * bs),
        block_size(bs),
        n_head_kv(n_head_kv_),
        head_dim(head_dim_),
        dtype(dt) {
    const size_t n = static_cast<size_t>(n_slots * n_head_kv * head_dim);
    k = encode(random_floats(n, seed), dt);
    v = encode(random_floats(n, seed + 1), dt);
  }
  PagedKvView view() const { return {k.data(), v.data(), dtype, block_size, n_head_kv, head_dim}; }
};

// Distinct block ids in random order.
class BlockAlloc {
 public:
  BlockAlloc(int64_t n_blocks, uint64_t seed) : free_(static_cast<size_t>(n_blocks)) {
    std::iota(free_.begin(), free_.end(), 0);
    std::shuffle(free_.begin(), free_.end(), std::mt19937_64(seed));
  }
  std::vector<int32_t> take(int64_t n) {
    EXPECT_LE(static_cast<size_t>(n), free_.size());
    std::vector<int32_t> out(free_.end() - n, free_.end());
    free_.resize(free_.size() - static_cast<size_t>(n));
    return out;
  }

 private:
  std::vector<int32_t> free_;
};

}  // namespace shardlm::test
