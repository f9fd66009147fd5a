// int8 block quantization (runtime/core/quant.h): the round trip's error bound on random rows,
// the row layout (bytes q + 128, then one f16 scale per 32), exact values, zero blocks and outliers.
#include "runtime/core/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace shardlm {
namespace {

TEST(QuantTest, RoundTripErrorIsHalfAStepPerBlock) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (int64_t n : {32, 64, 1024, 3072}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng);
    x[5] = 0.9f;  // an outlier: its block's scale is large, the others' are not
    std::vector<uint8_t> q(row_bytes(DType::kInt8, n));
    ASSERT_EQ(q.size(), static_cast<size_t>(n + n / 16));
    quantize_row_int8(x.data(), n, q.data());
    std::vector<float> y(static_cast<size_t>(n), NAN);
    dequantize_row_int8(q.data(), n, y.data());
    double err2 = 0, sig2 = 0;
    for (int64_t b = 0; b < n / kQuantBlock; ++b) {
      float amax = 0;
      for (int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
      uint16_t h;
      std::memcpy(&h, q.data() + n + b * 2, 2);
      const float d = f16_to_f32(h);
      EXPECT_NEAR(d, amax / 127.0f, amax / 127.0f * 1e-3f) << "block " << b;
      for (int64_t i = 0; i < kQuantBlock; ++i) {
        const size_t k = static_cast<size_t>(b * 32 + i);
        // Half a step, plus the f16 scale's rounding at the clamp (|q| <= 127).
        EXPECT_LE(std::fabs(y[k] - x[k]), 0.5f * d + amax * 1e-3f) << "n " << n << " k " << k;
        err2 += (y[k] - x[k]) * (y[k] - x[k]);
        sig2 += x[k] * x[k];
      }
    }
    // Relative RMS error of int8 on Gaussian weights: about 1% (a step is amax / 127).
    EXPECT_LT(std::sqrt(err2 / sig2), 0.02) << "n " << n;
  }
}

TEST(QuantTest, ExactValuesZeroBlocksAndSigns) {
  std::vector<float> x(64, 0.0f);  // block 0: multiples of 1/127 of 2; block 1: zeros
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = 2.0f * static_cast<float>(i - 16) / 16;
  std::vector<uint8_t> q(row_bytes(DType::kInt8, 64));
  quantize_row_int8(x.data(), 64, q.data());
  // Stored bytes are q + 128.
  auto v = [&](int i) { return static_cast<int>(q[static_cast<size_t>(i)]) - 128; };
  EXPECT_EQ(v(0), -127);  // -2.0 is the block's max magnitude
  EXPECT_EQ(v(16), 0);
  EXPECT_GT(v(31), 100);
  for (int i = 32; i < 64; ++i) EXPECT_EQ(v(i), 0);
  uint16_t h1;
  std::memcpy(&h1, q.data() + 64 + 2, 2);
  EXPECT_EQ(f16_to_f32(h1), 0.0f);  // a block of zeros has scale 0
  std::vector<float> y(64, NAN);
  dequantize_row_int8(q.data(), 64, y.data());
  EXPECT_FLOAT_EQ(y[0], -2.0f * f16_to_f32(f32_to_f16(2.0f / 127)) * 127 / 2.0f);
  for (int i = 32; i < 64; ++i) EXPECT_EQ(y[static_cast<size_t>(i)], 0.0f);
  EXPECT_EQ(row_bytes(DType::kInt8, 4096), 4096u + 256u);
  EXPECT_EQ(row_bytes(DType::kBF16, 4096), 8192u);
}

}  // namespace
}  // namespace shardlm
