// The scalar conversions of runtime/core/dtype.h for f8e4m3 (the KV cache's 8-bit float):
// every code's value against the format's definition, round trips, round to nearest even,
// saturation and NaN, and the names. The SIMD widening of the same codes: kernels_test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "runtime/core/dtype.h"

namespace shardlm {
namespace {

// The OCP FP8 E4M3 definition, written independently of dtype.cpp: bias 7, 3 mantissa bits,
// exponent 0 subnormal, S.1111.111 NaN, no infinities.
double e4m3_value(int code) {
  const int sign = code >> 7, exp = (code >> 3) & 15, mant = code & 7;
  if (exp == 15 && mant == 7) return std::numeric_limits<double>::quiet_NaN();
  const double mag =
      exp == 0 ? mant / 8.0 * std::pow(2.0, -6) : (1.0 + mant / 8.0) * std::pow(2.0, exp - 7);
  return sign ? -mag : mag;
}

TEST(F8E4M3Test, EveryCodeDecodesToTheFormatsValue) {
  EXPECT_EQ(e4m3_value(0x7e), 448.0);
  EXPECT_EQ(e4m3_value(0x01), std::pow(2.0, -9));
  for (int c = 0; c < 256; ++c) {
    const float got = f8e4m3_to_f32(static_cast<uint8_t>(c));
    const double want = e4m3_value(c);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << "code " << c;
      continue;
    }
    EXPECT_EQ(static_cast<double>(got), want) << "code " << c;
    EXPECT_EQ(std::signbit(got), (c & 0x80) != 0) << "code " << c;
  }
}

TEST(F8E4M3Test, EveryFiniteCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    EXPECT_EQ(f32_to_f8e4m3(f8e4m3_to_f32(static_cast<uint8_t>(c))), c) << "code " << c;
  }
}

// The nearest finite code by brute force, ties to the even code (mantissa's last bit 0); beyond
// 448 the largest. Non-negative x only (the sign is copied).
int nearest_code(double x) {
  int best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (int c = 0; c < 0x7f; ++c) {
    const double d = std::fabs(e4m3_value(c) - x);
    if (d < best_d || (d == best_d && (c & 1) == 0)) {
      best = c;
      best_d = d;
    }
  }
  return best;
}

TEST(F8E4M3Test, RoundsToNearestEvenAndSaturates) {
  // Ties: midpoints between neighbouring codes go to the even one, at every exponent and in
  // the subnormals; values just off a midpoint go to the nearer code.
  for (int c = 0; c + 1 < 0x7f; ++c) {
    const double lo = e4m3_value(c), hi = e4m3_value(c + 1), mid = (lo + hi) / 2;
    const int even = (c & 1) == 0 ? c : c + 1;
    EXPECT_EQ(f32_to_f8e4m3(static_cast<float>(mid)), even) << "tie after code " << c;
    EXPECT_EQ(f32_to_f8e4m3(-static_cast<float>(mid)), 0x80 | even) << "tie after code " << c;
    const float below = std::nextafter(static_cast<float>(mid), 0.0f);
    const float above = std::nextafter(static_cast<float>(mid), 1e9f);
    EXPECT_EQ(f32_to_f8e4m3(below), c) << "below the tie after code " << c;
    EXPECT_EQ(f32_to_f8e4m3(above), c + 1) << "above the tie after code " << c;
  }
  // Random magnitudes over the whole range and beyond, against the brute force.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> log2mag(-14.0, 10.0);
  for (int i = 0; i < 20000; ++i) {
    const float x = static_cast<float>(std::exp2(log2mag(rng)));
    ASSERT_EQ(f32_to_f8e4m3(x), nearest_code(x)) << x;
    ASSERT_EQ(f32_to_f8e4m3(-x), 0x80 | nearest_code(x)) << -x;
  }
  // Saturation instead of NaN: the format has no infinity.
  for (float x : {448.0f, 449.0f, 464.0f, 480.0f, 1e6f, 3e38f, INFINITY}) {
    EXPECT_EQ(f32_to_f8e4m3(x), 0x7e) << x;
    EXPECT_EQ(f32_to_f8e4m3(-x), 0xfe) << -x;
  }
  EXPECT_EQ(f32_to_f8e4m3(0.0f), 0x00);
  EXPECT_EQ(f32_to_f8e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_f8e4m3(1e-30f), 0x00);  // below half the smallest subnormal
  EXPECT_EQ(f32_to_f8e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(f32_to_f8e4m3(NAN) & 0x7f, 0x7f);
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(f32_to_f8e4m3(-NAN))));
}

TEST(F8E4M3Test, NamesAndKvTypes) {
  EXPECT_EQ(dtype_size(DType::kF8E4M3), 1u);
  EXPECT_STREQ(dtype_name(DType::kF8E4M3), "f8e4m3");
  for (const char* name : {"f8e4m3", "FP8", "fp8_e4m3", "float8_e4m3fn"}) {
    EXPECT_EQ(parse_dtype(name), DType::kF8E4M3) << name;
  }
  EXPECT_EQ(parse_dtype("f8"), std::nullopt);    // ambiguous (e4m3 or e5m2): refused
  EXPECT_EQ(parse_dtype("int8"), std::nullopt);  // weights only, never parsed as a KV type
  EXPECT_TRUE(is_kv_dtype(DType::kF8E4M3));
  EXPECT_TRUE(is_kv_dtype(DType::kBF16));
  EXPECT_FALSE(is_kv_dtype(DType::kInt8));
  EXPECT_FALSE(is_kv_dtype(DType::kInt4));
  // convert_dtype goes through the same conversions.
  const std::vector<float> x = {1.0625f, -0x3p-10f, 500.0f, 0.3f};
  std::vector<uint8_t> b(x.size());
  convert_dtype(x.data(), DType::kF32, b.data(), DType::kF8E4M3, x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(b[i], f32_to_f8e4m3(x[i])) << i;
  std::vector<float> back(x.size());
  convert_dtype(b.data(), DType::kF8E4M3, back.data(), DType::kF32, x.size());
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], -0x1p-8f);
  EXPECT_EQ(back[2], 448.0f);
  EXPECT_EQ(back[3], 0.3125f);
}

}  // namespace
}  // namespace shardlm
