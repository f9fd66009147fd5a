// int8 and int4 block quantization (runtime/core/quant.h): the round trip's error bound on random
// rows, the row layouts (int8: bytes q + 128; int4: nibbles q + 8 interleaved in groups of 16
// blocks; then one f16 scale per 32), exact values, zero blocks, outliers and int4's last group of
// fewer than 16 blocks; int4g128's scales per 128 inputs over the same values and layout.
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

TEST(QuantTest, Int4RoundTripErrorIsHalfAStepPerBlock) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  // 32, 64 and 96 are one group of 1-3 blocks; 1056 ends in a group of one block after two of 16.
  for (int64_t n : {32, 64, 96, 1024, 1056, 3072}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng);
    x[5] = 0.9f;  // an outlier
    std::vector<uint8_t> q(row_bytes(DType::kInt4, n));
    ASSERT_EQ(q.size(), static_cast<size_t>(n / 2 + n / 16));
    quantize_row_int4(x.data(), n, q.data());
    std::vector<float> y(static_cast<size_t>(n), NAN);
    dequantize_row_int4(q.data(), n, y.data());
    double err2 = 0, sig2 = 0;
    for (int64_t b = 0; b < n / kQuantBlock; ++b) {
      float amax = 0;
      for (int64_t i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
      uint16_t h;
      std::memcpy(&h, q.data() + n / 2 + b * 2, 2);
      const float d = std::fabs(f16_to_f32(h));
      EXPECT_NEAR(d, amax / 8.0f, amax / 8.0f * 1e-3f) << "block " << b;
      for (int64_t i = 0; i < kQuantBlock; ++i) {
        const size_t k = static_cast<size_t>(b * 32 + i);
        // Half a step, except the clamp at +7 steps on the side opposite the largest magnitude
        // (a value up to 8 steps away rounds to 7: one step).
        EXPECT_LE(std::fabs(y[k] - x[k]), 1.0f * d + amax * 1e-3f) << "n " << n << " k " << k;
        err2 += (y[k] - x[k]) * (y[k] - x[k]);
        sig2 += x[k] * x[k];
      }
    }
    // Relative RMS error of int4 on Gaussian weights: about 12% (a step is amax / 8).
    EXPECT_LT(std::sqrt(err2 / sig2), 0.2) << "n " << n;
    EXPECT_GT(std::sqrt(err2 / sig2), 0.02) << "n " << n;  // int4 is coarse: not a copy
  }
}

// The stored value q + 8 of input i of the rows below: every block holds all 16 levels (7 is
// coprime to 16), -8 among them, so the scale is exact and every value too.
int int4_test_level(int64_t i) {
  return static_cast<int>((7 * i + 3 * (i / 32)) % 16);
}

TEST(QuantTest, Int8WeightRowsInterleaveGroupsOf16Blocks) {
  // 544 inputs: a group of 16 blocks (bytes 0-511), then a last group of one block (512-543).
  const int64_t n = 544;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  std::vector<uint8_t> plain(row_bytes(DType::kInt8, n)), row(plain.size());
  quantize_row_int8(x.data(), n, plain.data());  // input order (activations)
  quantize_row(DType::kInt8, x.data(), n, row.data());
  // Spots, by hand: byte 4 holds block 1's input 32; byte 64 (step 1 of a 16-block group) input 4;
  // byte 512 the last block's input 512, byte 516 (its step 1: 4 bytes per step) input 516.
  EXPECT_EQ(row[0], plain[0]);
  EXPECT_EQ(row[4], plain[32]);
  EXPECT_EQ(row[64], plain[4]);
  EXPECT_EQ(row[65], plain[5]);
  EXPECT_EQ(row[512], plain[512]);
  EXPECT_EQ(row[516], plain[516]);
  // Every input: group g of G blocks from byte 512 g; byte 4 G s + 4 j + i holds input
  // 32 j + 4 s + i of the group.
  for (int64_t k = 0; k < n; ++k) {
    const int64_t g = k / 512, G = g == 0 ? 16 : 1, j = (k % 512) / 32, p = k % 32;
    const size_t byte = static_cast<size_t>(512 * g + 4 * G * (p / 4) + 4 * j + p % 4);
    EXPECT_EQ(row[byte], plain[static_cast<size_t>(k)]) << "input " << k;
    EXPECT_EQ(int8_byte(n, k), static_cast<int64_t>(byte)) << "input " << k;
  }
  // The scales are the same and in block order; the values come back.
  for (size_t i = static_cast<size_t>(n); i < row.size(); ++i) EXPECT_EQ(row[i], plain[i]) << i;
  std::vector<float> y(static_cast<size_t>(n)), y_plain(static_cast<size_t>(n));
  dequantize_row(DType::kInt8, row.data(), n, y.data());
  dequantize_row_int8(plain.data(), n, y_plain.data());
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[i], y_plain[i]) << i;
  uint8_t block[kQuantBlock];
  for (int64_t blk : {0, 7, 16}) {
    unpack_block_int8(row.data(), n, blk, block);
    for (int i = 0; i < kQuantBlock; ++i)
      EXPECT_EQ(block[i], plain[static_cast<size_t>(blk * 32 + i)])
          << "block " << blk << " input " << i;
  }
  // encode_row (already-quantized checkpoints) writes the same row from the stored values.
  std::vector<uint8_t> encoded(row.size());
  encode_row(DType::kInt8, plain.data(), reinterpret_cast<const uint16_t*>(plain.data() + n), n,
             encoded.data());
  EXPECT_EQ(encoded, row);
}

TEST(QuantTest, Int4LayoutInterleavesGroupsOf16Blocks) {
  // 544 inputs: a group of 16 blocks (bytes 0-255), then a last group of one block (256-271).
  const int64_t n = 544;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[i] = 0.25f * static_cast<float>(int4_test_level(i) - 8) * static_cast<float>(1 + i / 32);
  std::vector<uint8_t> q(row_bytes(DType::kInt4, n));
  quantize_row_int4(x.data(), n, q.data());
  auto low = [&](size_t byte) { return q[byte] & 0x0F; };
  auto high = [&](size_t byte) { return q[byte] >> 4; };
  // Spots, by hand: byte 0 holds inputs 0 and 4; byte 4 block 1's inputs 32 and 36; byte 64 (step
  // 1 of a 16-block group) inputs 8 and 12; byte 256 the lone block's inputs 512 and 516, byte 260
  // (its step 1: 4 bytes per step) inputs 520 and 524.
  EXPECT_EQ(low(0), int4_test_level(0));
  EXPECT_EQ(high(0), int4_test_level(4));
  EXPECT_EQ(low(4), int4_test_level(32));
  EXPECT_EQ(high(4), int4_test_level(36));
  EXPECT_EQ(low(64), int4_test_level(8));
  EXPECT_EQ(high(64), int4_test_level(12));
  EXPECT_EQ(low(256), int4_test_level(512));
  EXPECT_EQ(high(256), int4_test_level(516));
  EXPECT_EQ(low(260), int4_test_level(520));
  EXPECT_EQ(high(260), int4_test_level(524));
  // Every input: group g of G blocks from byte 256 g; byte 4 G s + 4 j + i holds input
  // 32 j + 8 s + i (low) and 32 j + 8 s + 4 + i (high) of the group.
  for (int64_t k = 0; k < n; ++k) {
    const int64_t g = k / 512, G = g == 0 ? 16 : 1, j = (k % 512) / 32, p = k % 32;
    const size_t byte = static_cast<size_t>(256 * g + 4 * G * (p / 8) + 4 * j + p % 4);
    EXPECT_EQ(p % 8 < 4 ? low(byte) : high(byte), int4_test_level(k)) << "input " << k;
    const Int4Position at = int4_position(n, k);
    EXPECT_EQ(at.byte, static_cast<int64_t>(byte)) << "input " << k;
    EXPECT_EQ(at.shift, p % 8 < 4 ? 0 : 4) << "input " << k;
  }
  std::vector<float> y(static_cast<size_t>(n), NAN);
  dequantize_row_int4(q.data(), n, y.data());
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[i], x[i]) << i;
  uint8_t block[kQuantBlock];
  for (int64_t blk : {0, 5, 16}) {
    unpack_block_int4(q.data(), n, blk, block);
    for (int i = 0; i < kQuantBlock; ++i)
      EXPECT_EQ(block[i], int4_test_level(blk * 32 + i)) << "block " << blk << " input " << i;
  }
  // A block of zeros: scale 0, values 0.
  std::vector<float> z(64, 0.0f);
  quantize_row_int4(z.data(), 64, q.data());
  dequantize_row_int4(q.data(), 64, y.data());
  for (int i = 0; i < 64; ++i) EXPECT_EQ(y[static_cast<size_t>(i)], 0.0f);
  EXPECT_EQ(row_bytes(DType::kInt4, 4096), 2048u + 256u);
}

TEST(QuantTest, Int4G128SharesOneScalePer128InputsOverInt4sLayout) {
  EXPECT_EQ(row_bytes(DType::kInt4G128, 4096), 2048u + 64u);
  EXPECT_EQ(quant_scale_inputs(DType::kInt4G128), 128);
  EXPECT_EQ(quant_scale_inputs(DType::kInt4), 32);
  EXPECT_TRUE(is_int4(DType::kInt4G128) && is_quantized(DType::kInt4G128));
  EXPECT_STREQ(dtype_name(DType::kInt4G128), "int4g128");
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  // 128: one scale group in a partial interleave group of 4 blocks; 640: a full interleave group
  // then a partial one of 4 blocks; 3072: six full interleave groups.
  for (int64_t n : {128, 640, 3072}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng);
    x[70] = -0.3f;  // an outlier (6 sigma) in the first scale group, block 2
    std::vector<uint8_t> q(row_bytes(DType::kInt4G128, n)), q4(row_bytes(DType::kInt4, n));
    ASSERT_EQ(q.size(), static_cast<size_t>(n / 2 + n / 64));
    quantize_row(DType::kInt4G128, x.data(), n, q.data());
    quantize_row(DType::kInt4, x.data(), n, q4.data());
    std::vector<float> y(static_cast<size_t>(n), NAN), y4(static_cast<size_t>(n), NAN);
    dequantize_row(DType::kInt4G128, q.data(), n, y.data());
    dequantize_row(DType::kInt4, q4.data(), n, y4.data());
    double err2 = 0, err2_32 = 0, sig2 = 0;
    for (int64_t s = 0; s < n / 128; ++s) {
      float m = 0;  // the largest magnitude of the 128 inputs, with its sign
      for (int64_t i = 0; i < 128; ++i)
        if (std::fabs(x[s * 128 + i]) > std::fabs(m)) m = x[s * 128 + i];
      uint16_t h;
      std::memcpy(&h, q.data() + n / 2 + s * 2, 2);
      EXPECT_EQ(h, f32_to_f16(m / -8.0f)) << "n " << n << " scale " << s;
      const float d = f16_to_f32(h);
      for (int64_t i = 0; i < 128; ++i) {
        const size_t k = static_cast<size_t>(s * 128 + i);
        // The stored nibble: x / d rounded to nearest even, clamped to [-8, 7].
        const int64_t b = static_cast<int64_t>(k) / 32;
        uint8_t block[kQuantBlock];
        unpack_block_int4(q.data(), n, b, block);
        const float want = std::clamp(std::nearbyint(x[k] / d), -8.0f, 7.0f);
        EXPECT_EQ(block[k % 32], static_cast<int>(want) + 8) << "n " << n << " input " << k;
        EXPECT_EQ(y[k], d * want) << "n " << n << " input " << k;
        err2 += (y[k] - x[k]) * (y[k] - x[k]);
        err2_32 += (y4[k] - x[k]) * (y4[k] - x[k]);
        sig2 += x[k] * x[k];
      }
    }
    // Coarser than int4's blocks of 32 (a scale covers more range), but still a quantization of x.
    EXPECT_GT(err2, err2_32) << "n " << n;
    EXPECT_LT(std::sqrt(err2 / sig2), 0.3) << "n " << n;
  }
  // encode_row takes one scale per 128 inputs and writes the same row.
  const int64_t n = 640;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[i] = 0.01f * static_cast<float>(int4_test_level(i) - 8) * (1 + i / 128);
  std::vector<uint8_t> q(row_bytes(DType::kInt4G128, n)), e(q.size(), 0xAB);
  quantize_row(DType::kInt4G128, x.data(), n, q.data());
  std::vector<uint8_t> stored(static_cast<size_t>(n));
  for (int64_t b = 0; b < n / 32; ++b) unpack_block_int4(q.data(), n, b, stored.data() + b * 32);
  std::vector<uint16_t> scales(static_cast<size_t>(n / 128));
  std::memcpy(scales.data(), q.data() + n / 2, scales.size() * 2);
  encode_row(DType::kInt4G128, stored.data(), scales.data(), n, e.data());
  EXPECT_EQ(e, q);
  EXPECT_EQ(quant_scale_at(DType::kInt4G128, n, 7), n / 2 + 2);
  EXPECT_EQ(quant_scale_at(DType::kInt4, n, 7), n / 2 + 14);
}

}  // namespace
}  // namespace shardlm
