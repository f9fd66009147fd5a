// Every kernels/cpu op against its kernels/ref twin on random inputs (never zeros), for every
// weight dtype and for 1 and 3 threads, on shapes that are not multiples of the SIMD width.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ref/ref_ops.h"
#include "tests/runtime/test_util.h"

namespace shardlm {
namespace {

using test::encode;
using test::max_abs_diff;
using test::random_floats;

// Absolute tolerance per accumulated product, by weight dtype. The CPU kernels widen f16/bf16
// weights exactly, so every dtype differs from the double-precision oracle only by f32
// accumulation error; the table keeps room for future kernels that compute in lower precision.
float per_term_tol(DType d) {
  switch (d) {
    case DType::kF32:
      return 2e-7f;
    case DType::kF16:
      return 2e-7f;
    case DType::kBF16:
      return 2e-7f;
  }
  return 0;
}

class KernelTest : public ::testing::TestWithParam<int> {
 protected:
  ThreadPool pool_{GetParam()};
};

TEST_P(KernelTest, MatmulMatchesRef) {
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t n_tokens : {1, 5}) {
      for (auto [n_in, n_out] : {std::pair<int64_t, int64_t>{67, 45}, {128, 200}, {16, 1}}) {
        const auto x = random_floats(static_cast<size_t>(n_tokens * n_in), 1);
        const auto wf = random_floats(static_cast<size_t>(n_out * n_in), 2);
        const auto w = encode(wf, dt);
        const auto bias = random_floats(static_cast<size_t>(n_out), 3);
        for (bool with_bias : {false, true}) {
          std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_out));
          std::vector<float> y_cpu(y_ref.size());
          const float* b = with_bias ? bias.data() : nullptr;
          ref::matmul(x.data(), n_tokens, n_in, w.data(), dt, n_out, b, y_ref.data());
          cpu::matmul(pool_, x.data(), n_tokens, n_in, w.data(), dt, n_out, b, y_cpu.data());
          EXPECT_LE(max_abs_diff(y_ref.data(), y_cpu.data(), y_ref.size()),
                    per_term_tol(dt) * static_cast<float>(n_in))
              << dtype_name(dt) << " n_tokens " << n_tokens << " n_in " << n_in;
        }
      }
    }
  }
}

TEST_P(KernelTest, GemvEqualsGemmRowBitwise) {
  // Decode (1 token) and prefill (many) must agree exactly so KV decode == recompute.
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    const int64_t n_in = 83, n_out = 37, n_tokens = 4;
    const auto x = random_floats(static_cast<size_t>(n_tokens * n_in), 4);
    const auto w = encode(random_floats(static_cast<size_t>(n_out * n_in), 5), dt);
    std::vector<float> all(static_cast<size_t>(n_tokens * n_out)), one(static_cast<size_t>(n_out));
    cpu::matmul(pool_, x.data(), n_tokens, n_in, w.data(), dt, n_out, nullptr, all.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      cpu::matmul(pool_, x.data() + t * n_in, 1, n_in, w.data(), dt, n_out, nullptr, one.data());
      for (int64_t o = 0; o < n_out; ++o) ASSERT_EQ(one[o], all[t * n_out + o]) << dtype_name(dt);
    }
  }
}

TEST_P(KernelTest, EmbedMatchesRefWithOutOfShardIds) {
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    const int64_t n_vocab_local = 11, n_embd = 37, vocab_start = 20;
    const auto table = encode(random_floats(static_cast<size_t>(n_vocab_local * n_embd), 6), dt);
    const std::vector<int32_t> ids = {20, 3, 30, 31, 25, 0, 20};
    std::vector<float> a(ids.size() * n_embd), b(a.size());
    ref::embed(ids.data(), static_cast<int64_t>(ids.size()), table.data(), dt, n_vocab_local,
               vocab_start, n_embd, a.data());
    cpu::embed(pool_, ids.data(), static_cast<int64_t>(ids.size()), table.data(), dt, n_vocab_local,
               vocab_start, n_embd, b.data());
    EXPECT_EQ(max_abs_diff(a.data(), b.data(), a.size()), 0.0f);
    EXPECT_EQ(b[1 * n_embd], 0.0f);  // id 3 is not in this shard
    EXPECT_NE(b[0], 0.0f);
  }
}

TEST_P(KernelTest, RmsNormMatchesRefAndAliases) {
  const int64_t n_rows = 7, n = 129;
  const auto x = random_floats(static_cast<size_t>(n_rows * n), 7, 3.0f);
  const auto w = random_floats(static_cast<size_t>(n), 8);
  std::vector<float> a(x.size()), b = x;
  ref::rms_norm(x.data(), w.data(), n_rows, n, 1e-6f, a.data());
  cpu::rms_norm(pool_, b.data(), w.data(), n_rows, n, 1e-6f, b.data());  // in place
  EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 1e-6f);
}

TEST_P(KernelTest, RopeMatchesRef) {
  const int64_t n_tokens = 5, n_head = 3, head_dim = 24;
  auto x = random_floats(static_cast<size_t>(n_tokens * n_head * head_dim), 9);
  auto y = x;
  std::vector<float> inv(head_dim / 2);
  for (size_t i = 0; i < inv.size(); ++i) inv[i] = std::pow(10000.0f, -2.0f * i / head_dim);
  const std::vector<int32_t> pos = {0, 1, 7, 100, 4095};
  ref::rope(x.data(), n_tokens, n_head, head_dim, pos.data(), inv.data());
  cpu::rope(pool_, y.data(), n_tokens, n_head, head_dim, pos.data(), inv.data());
  EXPECT_LE(max_abs_diff(x.data(), y.data(), x.size()), 1e-6f);
}

TEST_P(KernelTest, AttentionMatchesRefCausalGqaAndWindow) {
  const int64_t n_kv = 13, n_head = 6, n_head_kv = 2, head_dim = 20;
  const auto k = random_floats(static_cast<size_t>(n_kv * n_head_kv * head_dim), 10);
  const auto v = random_floats(static_cast<size_t>(n_kv * n_head_kv * head_dim), 11);
  for (int64_t window : {0, 1, 4}) {
    for (std::vector<int32_t> pos :
         {std::vector<int32_t>{12}, std::vector<int32_t>{8, 9, 10, 11, 12}}) {
      const int64_t n_tokens = static_cast<int64_t>(pos.size());
      const auto q = random_floats(static_cast<size_t>(n_tokens * n_head * head_dim), 12);
      std::vector<float> a(q.size()), b(q.size());
      const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
      ref::attention(q.data(), k.data(), v.data(), pos.data(), n_tokens, n_kv, n_head, n_head_kv,
                     head_dim, window, scale, a.data());
      cpu::attention(pool_, q.data(), k.data(), v.data(), pos.data(), n_tokens, n_kv, n_head,
                     n_head_kv, head_dim, window, scale, b.data());
      EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 2e-6f) << "window " << window;
    }
  }
}

TEST_P(KernelTest, SwigluAddCopyColumnsArgmax) {
  const int64_t n_tokens = 3, n_ff = 50;
  const auto gu = random_floats(static_cast<size_t>(n_tokens * 2 * n_ff), 13, 4.0f);
  std::vector<float> a(static_cast<size_t>(n_tokens * n_ff)), b(a.size());
  ref::swiglu(gu.data(), n_tokens, n_ff, a.data());
  cpu::swiglu(pool_, gu.data(), n_tokens, n_ff, b.data());
  EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 2e-6f);

  auto y1 = random_floats(100000, 14), y2 = y1;
  const auto x = random_floats(100000, 15);
  ref::add(y1.data(), x.data(), 100000);
  cpu::add(pool_, y2.data(), x.data(), 100000);
  EXPECT_EQ(max_abs_diff(y1.data(), y2.data(), y1.size()), 0.0f);

  const auto src = random_floats(4 * 30, 16);
  std::vector<float> c1(4 * 9), c2(4 * 9);
  ref::copy_columns(src.data(), 4, 30, 17, 9, c1.data());
  cpu::copy_columns(pool_, src.data(), 4, 30, 17, 9, c2.data());
  EXPECT_EQ(c1, c2);

  std::vector<float> v = random_floats(1000, 17);
  v[321] = 5.0f;
  v[700] = 5.0f;  // tie: the first wins
  EXPECT_EQ(ref::argmax(v.data(), 1000), 321);
  EXPECT_EQ(cpu::argmax(v.data(), 1000), 321);
}

INSTANTIATE_TEST_SUITE_P(Threads, KernelTest, ::testing::Values(1, 3),
                         [](const auto& info) { return std::to_string(info.param) + "_threads"; });

TEST(ThreadPoolTest, CoversRangeAndRethrows) {
  ThreadPool pool(3);
  std::vector<int> hits(1000, 0);
  pool.parallel_for(1000, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
  });
  EXPECT_EQ(std::accumulate(hits.begin(), hits.end(), 0), 1000);
  EXPECT_THROW(pool.parallel_for(100,
                                 [](int64_t b, int64_t) {
                                   if (b > 0) throw std::runtime_error("boom");
                                 }),
               std::runtime_error);
  pool.parallel_for(10, [](int64_t, int64_t) {});  // still usable
}

}  // namespace
}  // namespace shardlm
