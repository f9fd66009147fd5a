// Every kernels/cpu op against its kernels/ref twin on random inputs (never zeros), for every
// ISA level this machine runs (scalar, AVX2, AVX-512, AMX), every weight dtype, 1 and 3
// threads, on shapes that are not multiples of the SIMD widths and on both matmul paths
// (GEMV for <= kGemvMaxTokens tokens, GEMM above). Also the thread pool and the ISA table.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/gemv_quantized.h"
#include "kernels/cpu/kernel_table.h"
#if defined(SHARDLM_CPU_AMX)
#include "kernels/cpu/gemv_amx.h"
#endif
#if defined(SHARDLM_CPU_BF16_DOT)
#include "kernels/cpu/attention_bf16_dot.h"
#include "kernels/cpu/gemv_bf16_dot.h"
#endif
#include "kernels/ref/ref_ops.h"
#include "runtime/core/quant.h"
#include "tests/runtime/isa_threads_param.h"
#include "tests/runtime/test_util.h"

namespace shardlm {
namespace {

using cpu::Isa;
using test::encode;
using test::random_floats;

// Largest |a - b|; infinity when any value is NaN (outputs start as NaN, so an element a kernel
// never wrote fails the comparison instead of passing unnoticed).
float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// Absolute tolerance per accumulated product |x_i * w_i| <= 1, by weight dtype. Every path
// widens f16/bf16 weights exactly and accumulates in f32 (the AMX GEMM splits activations into
// three bf16 parts, which is exact), so all dtypes differ from the double-precision oracle only
// by f32 accumulation error.
float per_term_tol(DType d) {
  switch (d) {
    case DType::kInt8:  // scale * q is exact in f32 (an 11-bit by 8-bit product)
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF32:
      return 2e-7f;
    case DType::kF16:
      return 2e-7f;
    case DType::kBF16:
      return 2e-7f;
    case DType::kF8E4M3:  // a KV cache type, never a weight's
      return 0;
  }
  return 0;
}

class KernelTest : public ::testing::TestWithParam<std::tuple<Isa, int>> {
 protected:
  ThreadPool pool_{std::get<1>(GetParam())};
  cpu::Workspace ws_;
  cpu::Context ctx_{pool_, std::get<0>(GetParam()), ws_};
};

struct MatmulCase {
  int64_t n_tokens, n_in, n_out;
};

// Compares with ref::matmul, or with ref::matmul_bf16_activations when the context rounds
// activations (bf16 weights only; other dtypes stay exact).
void check_matmul(const cpu::Context& ctx, const MatmulCase& c, DType dt, bool with_bias,
                  float tol_per_term, uint64_t seed) {
  const auto x = random_floats(static_cast<size_t>(c.n_tokens * c.n_in), seed);
  const auto w = encode(random_floats(static_cast<size_t>(c.n_out * c.n_in), seed + 1), dt);
  const auto bias = random_floats(static_cast<size_t>(c.n_out), seed + 2);
  const float* b = with_bias ? bias.data() : nullptr;
  std::vector<float> y_ref(static_cast<size_t>(c.n_tokens * c.n_out));
  std::vector<float> y_cpu(y_ref.size(), NAN);
  if (ctx.bf16_activations && dt == DType::kBF16) {
    ref::matmul_bf16_activations(x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, b,
                                 y_ref.data());
  } else {
    ref::matmul(x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, b, y_ref.data());
  }
  cpu::matmul(ctx, x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, b, y_cpu.data());
  EXPECT_LE(max_abs_diff(y_ref.data(), y_cpu.data(), y_ref.size()),
            tol_per_term * static_cast<float>(c.n_in))
      << dtype_name(dt) << " n_tokens " << c.n_tokens << " n_in " << c.n_in << " n_out " << c.n_out
      << (with_bias ? " +bias" : "") << (ctx.bf16_activations ? " bf16 activations" : "");
}

TEST_P(KernelTest, MatmulMatchesRef) {
  // GEMV (<= kGemvMaxTokens = 16 tokens; bf16 with 2+ tokens in token pairs) and GEMM shapes;
  // odd sizes exercise every tail, the aligned ones (n_in % 32 == 0, n_out % 16 == 0) the AMX
  // tile path.
  const MatmulCase cases[] = {{1, 67, 45},  {5, 128, 200},  {1, 16, 1},    {8, 1000, 13},
                              {9, 67, 45},  {13, 300, 37},  {40, 128, 64}, {33, 96, 48},
                              {70, 64, 80}, {17, 1056, 16}, {2, 1000, 13}, {16, 96, 37},
                              {3, 31, 9}};
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (const MatmulCase& c : cases) {
      for (bool with_bias : {false, true})
        check_matmul(ctx_, c, dt, with_bias, per_term_tol(dt), 1);
    }
  }
}

TEST_P(KernelTest, MatmulWithBf16ActivationsMatchesRef) {
  // The bf16 activation mode (VDPBF16PS GEMV at AVX-512 where the CPU has it, the AMX tile GEMV
  // for 8+ tokens at n_in % 32 == 0 on AMX; elsewhere the rounded activations through the f32
  // kernels) against the ref with rounded activations: the
  // products are the same, so only f32 summation error is allowed. Its distance from the exact
  // result is bf16 rounding of x (relative 2^-9 per product), checked loosely as well.
  cpu::Context ctx = ctx_;
  ctx.bf16_activations = true;
  // GEMM (17+ tokens): odd n_in (a half-empty last pair), pair counts that end a 16-pair
  // transpose early, several k blocks ending in one pair (2050), panels of fewer than 12 tokens
  // and of fewer than 32 outputs.
  const MatmulCase cases[] = {{1, 67, 45},    {2, 1000, 13}, {3, 31, 9},     {8, 1000, 13},
                              {16, 96, 37},   {5, 1024, 96}, {13, 3072, 32}, {40, 128, 64},
                              {17, 1056, 16}, {29, 301, 45}, {50, 67, 33},   {61, 2050, 70},
                              {8, 1024, 45},  {11, 384, 200}};
  for (DType dt : {DType::kBF16, DType::kF16}) {
    for (const MatmulCase& c : cases) {
      for (bool with_bias : {false, true}) check_matmul(ctx, c, dt, with_bias, per_term_tol(dt), 3);
    }
  }
  const MatmulCase c{4, 512, 64};
  const auto x = random_floats(static_cast<size_t>(c.n_tokens * c.n_in), 5);
  const auto w = encode(random_floats(static_cast<size_t>(c.n_out * c.n_in), 6), DType::kBF16);
  std::vector<float> exact(static_cast<size_t>(c.n_tokens * c.n_out)), rounded(exact.size());
  ref::matmul(x.data(), c.n_tokens, c.n_in, w.data(), DType::kBF16, c.n_out, nullptr, exact.data());
  cpu::matmul(ctx, x.data(), c.n_tokens, c.n_in, w.data(), DType::kBF16, c.n_out, nullptr,
              rounded.data());
  const float d = max_abs_diff(exact.data(), rounded.data(), exact.size());
  EXPECT_GT(d, 0.0f) << "bf16 activations gave the exact result: the mode did nothing";
  EXPECT_LE(d, 4e-3f * static_cast<float>(c.n_in) / 16);
}

TEST_P(KernelTest, MatmulRealShapes) {
  // Qwen3-0.6B's n_embd (1024) and n_ff (3072) as n_in, decode and a prefill chunk.
  for (DType dt : {DType::kBF16, DType::kF16}) {
    check_matmul(ctx_, {1, 1024, 96}, dt, false, per_term_tol(dt), 7);
    check_matmul(ctx_, {64, 1024, 96}, dt, true, per_term_tol(dt), 8);
    check_matmul(ctx_, {20, 3072, 32}, dt, false, per_term_tol(dt), 9);
    // Several AMX weight groups (240 rows at n_in 2048) ending in 48 + 32 rows, and per-thread
    // row ranges that are not multiples of 48.
    check_matmul(ctx_, {37, 2048, 560}, dt, true, per_term_tol(dt), 10);
  }
}

TEST_P(KernelTest, GemvRowsDoNotDependOnHowManyTokensShareTheCall) {
  // Deterministic mode relies on it: a token's outputs are the same bits whether the GEMV runs
  // it alone or with up to kGemvMaxTokens - 1 others (any position in the batch). n_in 1024 is
  // a shape the AMX GEMV would take at 8+ tokens outside batch-invariant mode.
  for (const int64_t n_in : {int64_t{1000}, int64_t{1024}})
    for (bool bf16_activations : {false, true}) {
      const int64_t n_out = 45;
      cpu::Context ctx = ctx_;
      ctx.bf16_activations = bf16_activations;
      ctx.batch_invariant = true;
      for (DType dt : {DType::kBF16, DType::kF16, DType::kF32}) {
        const auto w = encode(random_floats(static_cast<size_t>(n_in * n_out), 31), dt);
        const auto x = random_floats(static_cast<size_t>(cpu::kGemvMaxTokens * n_in), 32);
        std::vector<float> all(static_cast<size_t>(cpu::kGemvMaxTokens * n_out));
        for (int64_t n_tokens :
             {int64_t{2}, int64_t{3}, int64_t{7}, int64_t{9}, cpu::kGemvMaxTokens}) {
          cpu::matmul(ctx, x.data(), n_tokens, n_in, w.data(), dt, n_out, nullptr, all.data());
          for (int64_t t = 0; t < n_tokens; ++t) {
            std::vector<float> alone(static_cast<size_t>(n_out));
            cpu::matmul(ctx, x.data() + t * n_in, 1, n_in, w.data(), dt, n_out, nullptr,
                        alone.data());
            EXPECT_EQ(
                0, std::memcmp(alone.data(), all.data() + t * n_out, alone.size() * sizeof(float)))
                << dtype_name(dt) << " token " << t << " of " << n_tokens << " n_in " << n_in
                << (bf16_activations ? " bf16 activations" : "");
          }
        }
      }
    }
}

TEST_P(KernelTest, MatmulResultsDoNotDependOnThreads) {
  // Each output is computed by one thread from start to end: same bits for any pool size.
  ThreadPool one(1);
  cpu::Workspace ws;
  const cpu::Context single{one, ctx_.isa, ws};
  for (int64_t n_tokens : {1, 30}) {
    const int64_t n_in = 160, n_out = 96;
    const auto x = random_floats(static_cast<size_t>(n_tokens * n_in), 20);
    const auto w = encode(random_floats(static_cast<size_t>(n_out * n_in), 21), DType::kBF16);
    std::vector<float> a(static_cast<size_t>(n_tokens * n_out)), b(a.size());
    cpu::matmul(ctx_, x.data(), n_tokens, n_in, w.data(), DType::kBF16, n_out, nullptr, a.data());
    cpu::matmul(single, x.data(), n_tokens, n_in, w.data(), DType::kBF16, n_out, nullptr, b.data());
    EXPECT_EQ(a, b) << "n_tokens " << n_tokens;
  }
}

TEST_P(KernelTest, EmbedMatchesRefWithOutOfShardIds) {
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    const int64_t n_vocab_local = 11, n_embd = 37, vocab_start = 20;
    const auto table = encode(random_floats(static_cast<size_t>(n_vocab_local * n_embd), 6), dt);
    const std::vector<int32_t> ids = {20, 3, 30, 31, 25, 0, 20};
    std::vector<float> a(ids.size() * n_embd), b(a.size(), NAN);
    ref::embed(ids.data(), static_cast<int64_t>(ids.size()), table.data(), dt, n_vocab_local,
               vocab_start, n_embd, a.data());
    cpu::embed(ctx_, ids.data(), static_cast<int64_t>(ids.size()), table.data(), dt, n_vocab_local,
               vocab_start, n_embd, b.data());
    EXPECT_EQ(max_abs_diff(a.data(), b.data(), a.size()), 0.0f);
    EXPECT_EQ(b[1 * n_embd], 0.0f);  // id 3 is not in this shard
    EXPECT_NE(b[0], 0.0f);
  }
}

// A quantized matrix [n_rows, n] (kInt8, kInt4 or kInt4G128) from random floats
// (runtime/core/quant.h).
std::vector<uint8_t> random_quantized(DType dt, int64_t n_rows, int64_t n, uint64_t seed) {
  const auto f = random_floats(static_cast<size_t>(n_rows * n), seed);
  std::vector<uint8_t> out(static_cast<size_t>(n_rows) * row_bytes(dt, n));
  for (int64_t r = 0; r < n_rows; ++r) {
    uint8_t* row = out.data() + static_cast<size_t>(r) * row_bytes(dt, n);
    quantize_row(dt, f.data() + r * n, n, row);
    // int8 rows may hold q = -128 (the stored byte 0), which 8-bit GPTQ imports can carry though
    // the quantizer never writes it: every kernel must take it.
    if (dt == DType::kInt8)
      for (int64_t k = 3; k < n; k += 29) row[k] = 0;
  }
  return out;
}

// Quantized weights through cpu::matmul: the GEMV (1..16 tokens; every tail of its 4 rows x 4
// tokens), the GEMM on dequantized panels (17+ tokens, k blocks of 256 and a tail), in both
// activation modes. The reference is ref::matmul (the whole matrix dequantized first), or
// ref::matmul_int8_activations where the GEMV quantizes activations too (AVX-512 VNNI), or
// ref::matmul_bf16_activations where the bf16 mode's prefill runs the VDPBF16PS GEMM on bf16
// panels (AVX-512 BF16). Rows hold whole blocks of 32 inputs; int4 rows whose n_in is not a
// multiple of 512 end in a group of fewer than 16 blocks (all of the row below 512). int4g128
// runs the shapes whose n_in is a multiple of 128 (its scale groups): 128 and 640 end in a group
// of 4 blocks, 1152 in one of 4 after two whole groups. One token with n_in a multiple of 512
// (1024, 2048, 1536) takes the VNNI kernel's one-token path (gemv_one_token_vnni).
TEST_P(KernelTest, QuantizedMatmulMatchesRef) {
  const bool int8_activations = cpu::int8_activation_gemv(ctx_.isa) != nullptr;
  const bool int8_gemm = cpu::int8_dot_supported() && ctx_.isa >= Isa::kAvx512;  // bf16 mode
  const bool bf16_gemm = cpu::bf16_dot_supported() && ctx_.isa >= Isa::kAvx512;
  // On AMX the bf16 mode's prefill of shapes with n_out % 16 == 0 runs the bf16 tile GEMM on
  // dequantized groups: the products of the VDPBF16PS GEMM's, so the same ref.
  bool amx = false;
#if defined(SHARDLM_CPU_AMX)
  amx = ctx_.isa >= Isa::kAmx && cpu::enable_amx();
#endif
  const MatmulCase cases[] = {
      {1, 32, 1},    {1, 64, 45},   {2, 96, 7},    {3, 384, 13},  {4, 1024, 33},  {5, 160, 200},
      {7, 32, 6},    {16, 288, 37}, {17, 320, 45}, {40, 544, 64}, {70, 64, 19},   {33, 1056, 17},
      {1, 1056, 29}, {1, 544, 17},  {6, 1056, 9},  {20, 96, 33},  {20, 96, 32},   {48, 1056, 48},
      {1, 128, 5},   {3, 640, 29},  {1, 1152, 18}, {17, 640, 32}, {40, 1152, 45}, {1, 1024, 37},
      {1, 2048, 21}, {1, 1536, 8}};
  for (bool bf16_activations : {false, true}) {
    cpu::Context ctx = ctx_;
    ctx.bf16_activations = bf16_activations;
    for (DType dt : {DType::kInt8, DType::kInt4, DType::kInt4G128}) {
      for (const MatmulCase& c : cases) {
        if (c.n_in % quant_scale_inputs(dt) != 0) continue;
        for (bool with_bias : {false, true}) {
          const auto x = random_floats(static_cast<size_t>(c.n_tokens * c.n_in), 40);
          const auto w = random_quantized(dt, c.n_out, c.n_in, 41);
          const auto bias = random_floats(static_cast<size_t>(c.n_out), 42);
          const float* b = with_bias ? bias.data() : nullptr;
          std::vector<float> y_ref(static_cast<size_t>(c.n_tokens * c.n_out));
          std::vector<float> y_cpu(y_ref.size(), NAN);
          const bool gemv = c.n_tokens <= cpu::kGemvMaxTokens;
          const bool amx_gemm = amx && !gemv && bf16_activations && c.n_out % 16 == 0;
          if (amx_gemm) {
            ref::matmul_bf16_activations(x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, b,
                                         y_ref.data());
          } else if ((int8_activations && gemv) || (bf16_activations && int8_gemm && !gemv)) {
            ref::matmul_int8_activations(x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, b,
                                         y_ref.data());
          } else if (bf16_activations && bf16_gemm && !gemv) {
            ref::matmul_bf16_activations(x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, b,
                                         y_ref.data());
          } else {
            ref::matmul(x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, b, y_ref.data());
          }
          cpu::matmul(ctx, x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, b, y_cpu.data());
          EXPECT_LE(max_abs_diff(y_ref.data(), y_cpu.data(), y_ref.size()),
                    per_term_tol(dt) * static_cast<float>(c.n_in))
              << dtype_name(dt) << " n_tokens " << c.n_tokens << " n_in " << c.n_in << " n_out "
              << c.n_out << (with_bias ? " +bias" : "")
              << (bf16_activations ? " bf16 activations" : "");
        }
      }
    }
  }
}

// The f32-activation quantized GEMV of every ISA level (the one AVX-512 machines without VNNI and
// scalar machines run; the portable loop at the AVX2 level), called directly.
// The int8-activation GEMV (VNNI, AVX2) sums each row and token in int32 and then scales; up to
// 2 tokens per pass keep the low and high nibbles' sums apart (the VNNI kernel takes int4's high
// nibbles in place, 16 times their value, and shifts the sum back once per group), more tokens
// share one sum. Both are exact, so a token alone, in a pair, or among 4 or 5 gets the same bits.
// A lone token with whole groups of 512 inputs (1024, 2048) runs the VNNI kernel's one-token path,
// whose two tunings (8 rows and 4 rows per pass) are also called directly: the same bits.
TEST_P(KernelTest, Int8ActivationGemvDoesNotDependOnHowManyTokensShareTheCall) {
  const cpu::Int8ActivationGemv gemv = cpu::int8_activation_gemv(ctx_.isa);
  if (!gemv) GTEST_SKIP() << "no int8-activation GEMV at this ISA level";
  for (DType dt : {DType::kInt8, DType::kInt4, DType::kInt4G128}) {
    for (const auto& [n_in, n_out] :
         {std::pair<int64_t, int64_t>{1024, 13}, {640, 9}, {1152, 6}, {2048, 37}}) {
      if (n_in % quant_scale_inputs(dt) != 0) continue;
      SCOPED_TRACE(std::string(dtype_name(dt)) + " n_in " + std::to_string(n_in));
      const int64_t n_tokens = 5;
      const auto x = random_floats(static_cast<size_t>(n_tokens * n_in), 70);
      const auto w = random_quantized(dt, n_out, n_in, 71);
      const size_t xab = cpu::arranged_activation_row_bytes(n_in);
      std::vector<uint8_t> xa(n_tokens * xab), scratch(row_bytes(DType::kInt8, n_in));
      for (int64_t t = 0; t < n_tokens; ++t) {
        cpu::prepare_int8_activations(ctx_.isa, x.data() + t * n_in, n_in, scratch.data(),
                                      xa.data() + t * xab);
      }
      std::vector<float> all(static_cast<size_t>(n_tokens * n_out), NAN);
      gemv(xa.data(), n_tokens, n_in, w.data(), dt, 0, n_out, nullptr, all.data(), n_out);
      for (int64_t group : {1, 2, 4}) {
        for (int64_t t0 = 0; t0 < n_tokens; t0 += group) {
          const int64_t nt = std::min(group, n_tokens - t0);
          std::vector<float> y(static_cast<size_t>(nt * n_out), NAN);
          gemv(xa.data() + t0 * xab, nt, n_in, w.data(), dt, 0, n_out, nullptr, y.data(), n_out);
          for (int64_t i = 0; i < nt * n_out; ++i) {
            ASSERT_EQ(std::memcmp(&y[i], &all[t0 * n_out + i], sizeof(float)), 0)
                << "tokens of " << group << ", token " << t0 + i / n_out << ", row " << i % n_out
                << ": " << y[i] << " vs " << all[t0 * n_out + i];
          }
        }
      }
#if defined(SHARDLM_CPU_INT8_DOT)
      if (n_in % 512 == 0 && gemv == cpu::gemv_quantized_vnni) {
        for (bool amd_tuning : {false, true}) {
          for (int64_t t = 0; t < n_tokens; ++t) {
            std::vector<float> y(static_cast<size_t>(n_out), NAN);
            cpu::gemv_one_token_vnni(xa.data() + t * xab, n_in, w.data(), dt, amd_tuning, 0, n_out,
                                     nullptr, y.data(), n_out);
            for (int64_t o = 0; o < n_out; ++o) {
              ASSERT_EQ(std::memcmp(&y[o], &all[t * n_out + o], sizeof(float)), 0)
                  << (amd_tuning ? "8 rows" : "4 rows") << ", token " << t << ", row " << o << ": "
                  << y[o] << " vs " << all[t * n_out + o];
            }
          }
        }
      }
#endif
    }
  }
}

TEST_P(KernelTest, QuantizedGemvWithF32ActivationsMatchesRef) {
  const MatmulCase cases[] = {{1, 32, 1}, {3, 96, 13}, {4, 1024, 33}, {16, 288, 37},
                              {5, 64, 6}, {2, 160, 9}, {3, 640, 7},   {2, 1152, 5}};
  for (DType dt : {DType::kInt8, DType::kInt4, DType::kInt4G128}) {
    for (const MatmulCase& c : cases) {
      if (c.n_in % quant_scale_inputs(dt) != 0) continue;
      const auto x = random_floats(static_cast<size_t>(c.n_tokens * c.n_in), 44);
      const auto w = random_quantized(dt, c.n_out, c.n_in, 45);
      const auto bias = random_floats(static_cast<size_t>(c.n_out), 46);
      std::vector<float> y_ref(static_cast<size_t>(c.n_tokens * c.n_out));
      std::vector<float> y_cpu(y_ref.size(), NAN);
      ref::matmul(x.data(), c.n_tokens, c.n_in, w.data(), dt, c.n_out, bias.data(), y_ref.data());
      cpu::gemv_quantized(ctx_.isa, dt, x.data(), c.n_tokens, c.n_in, w.data(), 0, c.n_out,
                          bias.data(), y_cpu.data(), c.n_out);
      EXPECT_LE(max_abs_diff(y_ref.data(), y_cpu.data(), y_ref.size()),
                per_term_tol(dt) * static_cast<float>(c.n_in))
          << dtype_name(dt) << " n_tokens " << c.n_tokens << " n_in " << c.n_in << " n_out "
          << c.n_out;
    }
  }
}

// The activations' int8 quantization of the int8-activation GEMVs: the SIMD versions give
// quantize_row_int8's bytes exactly (scales, rounding of halves to even, clamping, zero blocks).
TEST_P(KernelTest, ActivationQuantizationEqualsTheScalarQuantizer) {
  for (int64_t n : {32, 64, 96, 1056}) {
    auto x = random_floats(static_cast<size_t>(n), 47, 3.0f);
    for (int64_t i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = 0.0f;  // a zero block
    if (n >= 64) {
      x[40] = 1e4f;          // one large value sets its block's scale
      x[41] = 1e4f / 254.f;  // near a half step of it
    }
    if (n >= 96) {
      for (int64_t i = 64; i < 96; ++i)
        x[static_cast<size_t>(i)] = static_cast<float>(i - 80) * 0.5f;  // exact halves
    }
    std::vector<uint8_t> want(row_bytes(DType::kInt8, n)), got(want.size(), 0xAB);
    quantize_row_int8(x.data(), n, want.data());
    cpu::quantize_activations_int8(ctx_.isa, x.data(), n, got.data());
    EXPECT_EQ(got, want) << "n " << n;
  }
}

TEST_P(KernelTest, QuantizedEmbedMatchesRef) {
  for (DType dt : {DType::kInt8, DType::kInt4, DType::kInt4G128}) {
    const int64_t n_vocab_local = 11, n_embd = dt == DType::kInt4G128 ? 640 : 96, vocab_start = 20;
    const auto table = random_quantized(dt, n_vocab_local, n_embd, 43);
    const std::vector<int32_t> ids = {20, 3, 30, 25, 0, 20};
    std::vector<float> a(ids.size() * n_embd), b(a.size(), NAN);
    ref::embed(ids.data(), static_cast<int64_t>(ids.size()), table.data(), dt, n_vocab_local,
               vocab_start, n_embd, a.data());
    cpu::embed(ctx_, ids.data(), static_cast<int64_t>(ids.size()), table.data(), dt, n_vocab_local,
               vocab_start, n_embd, b.data());
    EXPECT_EQ(max_abs_diff(a.data(), b.data(), a.size()), 0.0f) << dtype_name(dt);
    EXPECT_EQ(b[1 * n_embd], 0.0f);  // id 3 is not in this shard
    EXPECT_NE(b[0], 0.0f);
  }
}

TEST_P(KernelTest, RmsNormMatchesRefAndAliases) {
  for (auto [n_rows, n] : {std::pair<int64_t, int64_t>{7, 129}, {3, 1024}, {40, 128}}) {
    const auto x = random_floats(static_cast<size_t>(n_rows * n), 7, 3.0f);
    const auto w = random_floats(static_cast<size_t>(n), 8);
    std::vector<float> a(x.size()), b = x;
    ref::rms_norm(x.data(), w.data(), n_rows, n, 1e-6f, a.data());
    cpu::rms_norm(ctx_, b.data(), w.data(), n_rows, n, 1e-6f, b.data());  // in place
    EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 1e-6f) << n_rows << "x" << n;
  }
}

TEST_P(KernelTest, RopeMatchesRef) {
  const int64_t n_tokens = 5, n_head = 3, head_dim = 24;
  auto x = random_floats(static_cast<size_t>(n_tokens * n_head * head_dim), 9);
  auto y = x;
  std::vector<float> inv(head_dim / 2);
  for (size_t i = 0; i < inv.size(); ++i) inv[i] = std::pow(10000.0f, -2.0f * i / head_dim);
  const std::vector<int32_t> pos = {0, 1, 7, 100, 4095};
  ref::rope(x.data(), n_tokens, n_head, head_dim, pos.data(), inv.data());
  cpu::rope(ctx_, y.data(), n_tokens, n_head, head_dim, pos.data(), inv.data());
  EXPECT_LE(max_abs_diff(x.data(), y.data(), x.size()), 1e-6f);
}

TEST_P(KernelTest, AttentionMatchesRefCausalGqaAndWindow) {
  // 1 and 3 tokens (split-K decode path), 5 and 40 tokens (tiled path; 40 = two query blocks),
  // against GQA groups of 3 and 2, MQA, head_dim 20 and 128, with and without a window.
  struct Case {
    int64_t n_kv, n_head, n_head_kv, head_dim;
  };
  for (const Case& c :
       {Case{13, 6, 2, 20}, Case{300, 4, 2, 128}, Case{45, 6, 2, 128}, Case{41, 4, 1, 32}}) {
    const auto k = random_floats(static_cast<size_t>(c.n_kv * c.n_head_kv * c.head_dim), 10);
    const auto v = random_floats(static_cast<size_t>(c.n_kv * c.n_head_kv * c.head_dim), 11);
    for (int64_t n_tokens : {1, 3, 5, 40}) {
      if (n_tokens > c.n_kv) continue;
      std::vector<int32_t> pos(static_cast<size_t>(n_tokens));
      for (int64_t t = 0; t < n_tokens; ++t) pos[t] = static_cast<int32_t>(c.n_kv - n_tokens + t);
      for (int64_t window : {0, 1, 4, 17}) {
        const auto q = random_floats(static_cast<size_t>(n_tokens * c.n_head * c.head_dim), 12);
        std::vector<float> a(q.size()), b(q.size(), NAN);
        const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
        ref::attention(q.data(), k.data(), v.data(), pos.data(), n_tokens, c.n_kv, c.n_head,
                       c.n_head_kv, c.head_dim, window, scale, a.data());
        cpu::attention(ctx_, q.data(), k.data(), v.data(), pos.data(), n_tokens, c.n_kv, c.n_head,
                       c.n_head_kv, c.head_dim, window, scale, b.data());
        EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 2e-6f)
            << "n_kv " << c.n_kv << " window " << window << " n_tokens " << n_tokens;
      }
    }
  }
}

TEST_P(KernelTest, SwigluAddCopyColumnsArgmax) {
  for (auto [n_tokens, n_ff, mag] :
       {std::tuple<int64_t, int64_t, float>{3, 50, 4.0f}, {2, 3072, 4.0f}, {1, 77, 120.0f}}) {
    const auto gu = random_floats(static_cast<size_t>(n_tokens * 2 * n_ff), 13, mag);
    std::vector<float> a(static_cast<size_t>(n_tokens * n_ff)), b(a.size(), NAN);
    ref::swiglu(gu.data(), n_tokens, n_ff, a.data());
    cpu::swiglu(ctx_, gu.data(), n_tokens, n_ff, b.data());
    // Relative to the magnitude: silu(g) * u reaches |g * u| ~ mag^2.
    EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 2e-6f * std::max(1.0f, mag * mag / 16))
        << "n_ff " << n_ff << " magnitude " << mag;
  }

  auto y1 = random_floats(100000, 14), y2 = y1;
  const auto x = random_floats(100000, 15);
  ref::add(y1.data(), x.data(), 100000);
  cpu::add(ctx_, y2.data(), x.data(), 100000);
  EXPECT_EQ(max_abs_diff(y1.data(), y2.data(), y1.size()), 0.0f);

  const auto src = random_floats(4 * 30, 16);
  std::vector<float> c1(4 * 9), c2(4 * 9);
  ref::copy_columns(src.data(), 4, 30, 17, 9, c1.data());
  cpu::copy_columns(ctx_, src.data(), 4, 30, 17, 9, c2.data());
  EXPECT_EQ(c1, c2);

  std::vector<float> v = random_floats(1000, 17);
  v[321] = 5.0f;
  v[700] = 5.0f;  // tie: the first wins
  EXPECT_EQ(ref::argmax(v.data(), 1000), 321);
  EXPECT_EQ(cpu::argmax(v.data(), 1000), 321);
}

// KernelTable::f32_to_f8e4m3 (store_kv into an f8e4m3 pool) has the codes of the scalar
// f32_to_f8e4m3 for random values over the whole range, every tie, subnormal, saturating and
// special value, at lengths that leave tails.
TEST_P(KernelTest, NarrowToF8E4M3EqualsTheScalarConversion) {
  const cpu::KernelTable& kt = cpu::kernel_table(ctx_.isa);
  std::vector<float> x;
  std::mt19937 rng(90);
  std::uniform_real_distribution<float> exponent(-14.0f, 10.0f);
  for (int i = 0; i < 2000; ++i) {
    const float v = std::exp2(exponent(rng)) * (i % 2 ? -1.0f : 1.0f);
    x.push_back(v);
  }
  for (int c = 0; c < 256; ++c) {  // every code, and the midpoints to its neighbours (ties)
    const float v = f8e4m3_to_f32(static_cast<uint8_t>(c));
    const float next = f8e4m3_to_f32(static_cast<uint8_t>(c + 1 < 256 ? c + 1 : c));
    x.push_back(v);
    if (!std::isnan(v) && !std::isnan(next)) x.push_back(0.5f * (v + next));
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {0.0f, -0.0f, 448.0f, 456.0f, 464.0f, 465.0f, 1e30f, inf, -inf,
                  std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                  std::ldexp(1.0f, -6), std::ldexp(1.0f, -9), std::ldexp(1.0f, -10),
                  std::ldexp(3.0f, -11), std::numeric_limits<float>::denorm_min()}) {
    x.push_back(v);
    x.push_back(-v);
  }
  for (auto [off, n] : {std::pair<size_t, size_t>{0, x.size()}, {3, 256}, {5, 17}, {1, 7}}) {
    std::vector<uint8_t> got(n, 0xAB);
    kt.f32_to_f8e4m3(x.data() + off, static_cast<int64_t>(n), got.data());
    for (size_t i = 0; i < n; ++i) {
      const float v = x[off + i];
      ASSERT_EQ(int{got[i]}, int{f32_to_f8e4m3(v)})
          << "value " << v << " (index " << off + i << ")";
    }
  }
}

// KernelTable::widen and f8e4m3_to_bf16 of f8e4m3 KV rows (the paged attention's widened copies
// and its bf16 staging): every code, at offsets and lengths that leave tails, equals dtype.h.
TEST_P(KernelTest, WidenF8E4M3EqualsTheScalarConversion) {
  const cpu::KernelTable& kt = cpu::kernel_table(ctx_.isa);
  std::vector<uint8_t> codes(600);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>((i * 37 + 11) % 256);
  for (auto [off, n] : {std::pair<size_t, int64_t>{0, 600}, {3, 256}, {5, 17}, {1, 7}}) {
    std::vector<float> got(static_cast<size_t>(n), -1.0f);
    std::vector<uint16_t> got16(static_cast<size_t>(n), 0xffff);
    kt.widen(codes.data() + off, DType::kF8E4M3, n, got.data());
    kt.f8e4m3_to_bf16(codes.data() + off, n, got16.data());
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t c = codes[off + static_cast<size_t>(i)];
      const float want = f8e4m3_to_f32(c);
      const float got_bf16 = bf16_to_f32(got16[i]);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got[i])) << "code " << int{c};
        EXPECT_TRUE(std::isnan(got_bf16)) << "code " << int{c};
      } else {
        EXPECT_EQ(std::memcmp(&got_bf16, &want, sizeof(float)), 0)
            << "bf16 of code " << int{c} << ": " << got_bf16 << " vs " << want;
        EXPECT_EQ(std::memcmp(&got[i], &want, sizeof(float)), 0)
            << "code " << int{c} << ": " << got[i] << " vs " << want;
      }
    }
  }
}

// KernelTable::attn_pv_rows_bf16 (decode P.V on a bf16 pool: a GQA group's rows share each V
// row) against the naive loop, o[d] = fma(p[j], v_j[d], o[d]) over the keys in order: the same
// bits, for every head_dim it covers, 1-5 rows (pairs and a lone row), key counts with and
// without a prefetch-distance tail, rows read through scattered pointers, with and without the
// prefetches.
TEST_P(KernelTest, PvRowsOnBf16RowsEqualTheNaiveLoop) {
  const cpu::KernelTable& kt = cpu::kernel_table(ctx_.isa);
  if (!kt.attn_pv_rows_bf16) GTEST_SKIP() << "no bf16-row P.V at this ISA level";
  EXPECT_FALSE(kt.attn_pv_rows_bf16(nullptr, 0, 0, nullptr, 0, 96, nullptr, 0, true));
  for (int64_t hd : {64, 128, 256}) {
    ASSERT_TRUE(kt.attn_pv_rows_bf16(nullptr, 0, 0, nullptr, 0, hd, nullptr, 0, true)) << hd;
    for (int64_t n_rows : {1, 2, 3, 4, 5}) {
      for (int64_t n_keys : {1, 7, 9, 40}) {
        SCOPED_TRACE("hd " + std::to_string(hd) + ", rows " + std::to_string(n_rows) + ", keys " +
                     std::to_string(n_keys));
        const uint64_t seed = static_cast<uint64_t>(hd * 100 + n_rows * 10 + n_keys);
        // V rows 3 rows apart in a pool (a pointer per key, in reverse pool order).
        const std::vector<float> vf = random_floats(static_cast<size_t>(3 * n_keys * hd), seed);
        std::vector<uint16_t> pool(vf.size());
        for (size_t i = 0; i < vf.size(); ++i) pool[i] = f32_to_bf16(vf[i]);
        std::vector<const uint16_t*> rows(static_cast<size_t>(n_keys));
        for (int64_t j = 0; j < n_keys; ++j) rows[j] = pool.data() + (3 * (n_keys - 1 - j)) * hd;
        const int64_t ldp = n_keys + 3, ldo = hd + 16;
        const std::vector<float> p = random_floats(static_cast<size_t>(n_rows * ldp), seed + 1);
        std::vector<float> o = random_floats(static_cast<size_t>(n_rows * ldo), seed + 2);
        std::vector<float> want = o;
        for (int64_t r = 0; r < n_rows; ++r) {
          for (int64_t d = 0; d < hd; ++d) {
            float acc = want[r * ldo + d];
            for (int64_t j = 0; j < n_keys; ++j) {
              acc = std::fma(p[r * ldp + j], bf16_to_f32(rows[j][d]), acc);
            }
            want[r * ldo + d] = acc;
          }
        }
        for (bool prefetch : {true, false}) {
          std::vector<float> got = o;
          ASSERT_TRUE(kt.attn_pv_rows_bf16(p.data(), ldp, n_rows, rows.data(), n_keys, hd,
                                           got.data(), ldo, prefetch));
          for (size_t i = 0; i < o.size(); ++i) {
            ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(float)), 0)
                << "element " << i << ": " << got[i] << " vs " << want[i]
                << (prefetch ? "" : " without prefetches");
          }
        }
      }
    }
  }
}

std::vector<std::tuple<Isa, int>> all_params() {
  std::vector<std::tuple<Isa, int>> p;
  for (Isa isa : cpu::runnable_isas()) {
    for (int threads : {1, 3}) p.emplace_back(isa, threads);
  }
  return p;
}

INSTANTIATE_TEST_SUITE_P(IsaThreads, KernelTest, ::testing::ValuesIn(all_params()),
                         test::isa_threads_name);

#if defined(SHARDLM_CPU_BF16_DOT)
TEST(Bf16DotTest, VectorRoundingEqualsTheScalarRounding) {
  // Round to nearest even, ties both ways, values near the overflow, zeros, tails of 1..15.
  if (cpu::detect_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this machine";
  std::vector<float> x = random_floats(1000, 40);
  for (uint32_t bits : {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x7f7fffffu, 0xff7f8000u,
                        0x00000000u, 0x80000000u, 0x3f800001u, 0x7f800000u}) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    x.push_back(f);
  }
  for (size_t n : {x.size(), size_t{1}, size_t{15}, size_t{17}}) {
    std::vector<uint16_t> got(n);
    cpu::round_to_bf16_avx512(x.data(), static_cast<int64_t>(n), got.data());
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], f32_to_bf16(x[i])) << "element " << i;
  }
}
#endif

#if defined(SHARDLM_CPU_BF16_DOT)
// Rows of bf16 (random values) n_keys of them, 3 rows apart in a pool, and a pointer per key in
// reverse pool order (as a block table scatters them).
struct ScatteredBf16Rows {
  std::vector<uint16_t> pool;
  std::vector<const uint16_t*> rows;
  ScatteredBf16Rows(int64_t n_keys, int64_t hd, uint64_t seed) {
    const std::vector<float> f = random_floats(static_cast<size_t>(3 * n_keys * hd), seed);
    pool.resize(f.size());
    for (size_t i = 0; i < f.size(); ++i) pool[i] = f32_to_bf16(f[i]);
    rows.resize(static_cast<size_t>(n_keys));
    for (int64_t j = 0; j < n_keys; ++j) rows[j] = pool.data() + (3 * (n_keys - 1 - j)) * hd;
  }
};

TEST(Bf16DotTest, DecodeScoresMatchTheDotAndDoNotDependOnPlaceOrOtherKeys) {
  // attn_scores_row_bf16_dot against a double-precision dot of the same bf16 values (f32 sums:
  // within 2^-20 of the sum of |terms|), and bit for bit against the key scored alone: whole
  // batches of 16 keys and the tail reduce by the same tree, so neither the key's place nor the
  // other keys change a score. Head sizes 32-256, key counts around the batch of 16.
  if (!cpu::bf16_dot_supported()) GTEST_SKIP() << "no AVX-512 BF16 on this machine";
  const float scale = 0.125f;
  for (int64_t hd : {32, 64, 96, 128, 256}) {
    for (int64_t n_keys : {1, 8, 15, 16, 17, 40}) {
      SCOPED_TRACE("hd " + std::to_string(hd) + ", keys " + std::to_string(n_keys));
      const uint64_t seed = static_cast<uint64_t>(hd * 100 + n_keys);
      const ScatteredBf16Rows k(n_keys, hd, seed);
      const std::vector<float> qf = random_floats(static_cast<size_t>(hd), seed + 1);
      std::vector<uint16_t> q(qf.size());
      for (size_t i = 0; i < qf.size(); ++i) q[i] = f32_to_bf16(qf[i]);
      std::vector<float> s(static_cast<size_t>(n_keys), NAN);
      cpu::attn_scores_row_bf16_dot(q.data(), k.rows.data(), n_keys, hd, scale, s.data());
      std::vector<float> no_prefetch(s.size(), NAN);
      cpu::attn_scores_row_bf16_dot(q.data(), k.rows.data(), n_keys, hd, scale, no_prefetch.data(),
                                    false);
      for (int64_t j = 0; j < n_keys; ++j) {
        double dot = 0, mag = 0;
        for (int64_t d = 0; d < hd; ++d) {
          const double t = static_cast<double>(bf16_to_f32(q[d])) * bf16_to_f32(k.rows[j][d]);
          dot += t;
          mag += std::fabs(t);
        }
        ASSERT_NEAR(s[j], dot * scale, std::ldexp(mag * scale, -20)) << "key " << j;
        float alone = NAN;
        cpu::attn_scores_row_bf16_dot(q.data(), k.rows.data() + j, 1, hd, scale, &alone);
        ASSERT_EQ(std::memcmp(&s[j], &alone, sizeof(float)), 0)
            << "key " << j << ": " << s[j] << " vs " << alone << " alone";
        ASSERT_EQ(std::memcmp(&s[j], &no_prefetch[j], sizeof(float)), 0)
            << "key " << j << ": " << s[j] << " vs " << no_prefetch[j] << " without prefetches";
      }
    }
  }
}
#endif

#if defined(SHARDLM_CPU_BF16_DOT)
TEST(Bf16DotTest, GroupScoresHaveTheBitsOfEachRowScoredAlone) {
  // attn_scores_group_bf16_dot (a GQA group's rows sharing each K row) against
  // attn_scores_row_bf16_dot row by row, bit for bit: every group and head_dim it covers, key
  // counts around its batches of 16 / group keys. Outputs start as NaN, so a score it skips
  // fails; the scores land at the row stride. Combinations it does not cover return false.
  if (!cpu::bf16_dot_supported()) GTEST_SKIP() << "no AVX-512 BF16 on this machine";
  EXPECT_FALSE(cpu::attn_scores_group_bf16_dot(nullptr, 0, 4, nullptr, 0, 128, 1.0f, nullptr, 0));
  EXPECT_FALSE(cpu::attn_scores_group_bf16_dot(nullptr, 0, 3, nullptr, 0, 64, 1.0f, nullptr, 0));
  EXPECT_FALSE(cpu::attn_scores_group_bf16_dot(nullptr, 0, 2, nullptr, 0, 48, 1.0f, nullptr, 0));
  const float scale = 0.0883883f;
  for (auto [group, hd] : {std::pair<int64_t, int64_t>{2, 32},
                           {2, 64},
                           {2, 96},
                           {2, 128},
                           {4, 32},
                           {4, 64},
                           {8, 32}}) {
    ASSERT_TRUE(
        cpu::attn_scores_group_bf16_dot(nullptr, 0, group, nullptr, 0, hd, 1.0f, nullptr, 0));
    for (int64_t n_keys : {1, 2, 3, 7, 8, 9, 17, 40}) {
      SCOPED_TRACE("group " + std::to_string(group) + ", hd " + std::to_string(hd) + ", keys " +
                   std::to_string(n_keys));
      const uint64_t seed = static_cast<uint64_t>(group * 1000 + hd * 10 + n_keys);
      const ScatteredBf16Rows k(n_keys, hd, seed);
      const int64_t ldq = hd + 32, lds = n_keys + 5;
      const std::vector<float> qf = random_floats(static_cast<size_t>(group * ldq), seed + 1);
      std::vector<uint16_t> q(qf.size());
      for (size_t i = 0; i < qf.size(); ++i) q[i] = f32_to_bf16(qf[i]);
      std::vector<float> s(static_cast<size_t>(group * lds), NAN);
      ASSERT_TRUE(cpu::attn_scores_group_bf16_dot(q.data(), ldq, group, k.rows.data(), n_keys, hd,
                                                  scale, s.data(), lds));
      for (int64_t g = 0; g < group; ++g) {
        std::vector<float> want(static_cast<size_t>(n_keys), NAN);
        cpu::attn_scores_row_bf16_dot(q.data() + g * ldq, k.rows.data(), n_keys, hd, scale,
                                      want.data());
        for (int64_t j = 0; j < n_keys; ++j) {
          ASSERT_EQ(std::memcmp(&s[g * lds + j], &want[j], sizeof(float)), 0)
              << "row " << g << ", key " << j << ": " << s[g * lds + j] << " vs " << want[j];
        }
        for (int64_t j = n_keys; j < lds; ++j) ASSERT_TRUE(std::isnan(s[g * lds + j])) << j;
      }
    }
  }
}
#endif

#if defined(SHARDLM_CPU_AMX)
TEST(AmxTest, FewerSplitsRoundActivationsToBf16) {
  // 1 part = activations rounded to bf16: error ~2^-8 relative per product, far above the exact
  // default and still bounded; 2 parts sit in between.
  if (cpu::detect_isa() < Isa::kAmx) GTEST_SKIP() << "no AMX on this machine";
  ThreadPool pool(2);
  cpu::Workspace ws;
  const MatmulCase c{48, 256, 64};
  for (int splits : {1, 2}) {
    cpu::Context ctx{pool, Isa::kAmx, ws, splits};
    check_matmul(ctx, c, DType::kBF16, true, splits == 1 ? 8e-3f : 4e-5f, 30);
  }
}
#endif

#if defined(SHARDLM_CPU_AMX)
// amx_gemv_rows on `rows` = {o_begin, o_end} pieces of [0, n_out) (o_begin multiples of 16).
//   x [n_tokens, n_in] f32 (rounded to bf16 here), w [n_out, n_in] bf16, y [n_tokens, n_out]
std::vector<float> amx_gemv(const std::vector<float>& x, int64_t n_tokens, int64_t n_in,
                            const std::vector<uint8_t>& w, int64_t n_out, const float* bias,
                            const std::vector<std::pair<int64_t, int64_t>>& rows) {
  std::vector<uint16_t> xb(x.size()), xt(x.size());
  for (size_t i = 0; i < x.size(); ++i) xb[i] = f32_to_bf16(x[i]);
  cpu::amx_gemv_pack_x(xb.data(), n_tokens, n_in, xt.data());
  std::vector<float> y(static_cast<size_t>(n_tokens * n_out), NAN);
  for (const auto& [o_begin, o_end] : rows) {
    cpu::amx_gemv_rows(xt.data(), n_tokens, n_in, reinterpret_cast<const uint16_t*>(w.data()),
                       o_begin, o_end, bias, y.data(), n_out);
  }
  return y;
}

TEST(AmxGemvTest, MatchesItsRefTwinForEveryTokenCountAndRowTail) {
  // The tile GEMV against ref::matmul_bf16_activations (same products, f32 sums in another
  // order), 1 to 16 tokens, row counts that end in 4-block groups, 1-3 blocks and a partial
  // block (n_out % 16), several row ranges per matrix. Outputs start as NaN, so a row the kernel
  // skips fails.
  if (!cpu::amx_gemv_supported(32)) GTEST_SKIP() << "no AMX on this machine";
  struct Case {
    int64_t n_in, n_out;
  };
  for (const Case c : {Case{32, 16}, Case{384, 200}, Case{1024, 45}, Case{96, 7}, Case{64, 131}}) {
    const auto w = encode(random_floats(static_cast<size_t>(c.n_out * c.n_in), 50), DType::kBF16);
    const auto bias = random_floats(static_cast<size_t>(c.n_out), 51);
    for (int64_t n_tokens = 1; n_tokens <= cpu::kGemvMaxTokens; ++n_tokens) {
      const auto x = random_floats(static_cast<size_t>(n_tokens * c.n_in), 52 + n_tokens);
      std::vector<float> ref(static_cast<size_t>(n_tokens * c.n_out));
      ref::matmul_bf16_activations(x.data(), n_tokens, c.n_in, w.data(), DType::kBF16, c.n_out,
                                   bias.data(), ref.data());
      const int64_t split = std::min<int64_t>(c.n_out, 32);
      const auto got =
          amx_gemv(x, n_tokens, c.n_in, w, c.n_out, bias.data(), {{0, split}, {split, c.n_out}});
      EXPECT_LE(max_abs_diff(ref.data(), got.data(), ref.size()),
                per_term_tol(DType::kBF16) * static_cast<float>(c.n_in))
          << "n_in " << c.n_in << " n_out " << c.n_out << " n_tokens " << n_tokens;
    }
  }
}

TEST(AmxGemvTest, RowsDoNotDependOnTokenCountOrRowRanges) {
  // Every output element is summed by the tile unit in one order: a token alone, or as the
  // last of 16, and a matrix in one range or in 16-row pieces give the same bits.
  if (!cpu::amx_gemv_supported(32)) GTEST_SKIP() << "no AMX on this machine";
  const int64_t n_in = 320, n_out = 83, n_tokens = 16;
  const auto w = encode(random_floats(static_cast<size_t>(n_out * n_in), 60), DType::kBF16);
  const auto x = random_floats(static_cast<size_t>(n_tokens * n_in), 61);
  const auto all = amx_gemv(x, n_tokens, n_in, w, n_out, nullptr, {{0, n_out}});
  std::vector<std::pair<int64_t, int64_t>> pieces;
  for (int64_t o = 0; o < n_out; o += 16) pieces.emplace_back(o, std::min(n_out, o + 16));
  const std::vector<float> last(x.end() - n_in, x.end());
  const auto alone = amx_gemv(last, 1, n_in, w, n_out, nullptr, pieces);
  EXPECT_EQ(0, std::memcmp(alone.data(), all.data() + (n_tokens - 1) * n_out,
                           alone.size() * sizeof(float)));
}
#endif

TEST(IsaTest, NamesRoundTripAndRunnableStartsWithScalar) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    EXPECT_EQ(cpu::parse_isa(cpu::isa_name(i)), i);
  }
  EXPECT_FALSE(cpu::parse_isa("sse9").has_value());
  const auto isas = cpu::runnable_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kScalar);
  EXPECT_EQ(isas.back(), cpu::detect_isa());
  EXPECT_EQ(cpu::detect_isa(Isa::kScalar), Isa::kScalar);  // a cap is honoured
  for (Isa i : isas) EXPECT_EQ(cpu::kernel_table(i).isa, i == Isa::kAmx ? Isa::kAvx512 : i);
  EXPECT_FALSE(cpu::cpu_feature_summary().empty());
}

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

TEST(ThreadPoolTest, RunGivesEveryMemberItsIndexManyTimes) {
  // Back-to-back jobs (a decode step's pattern) must neither lose nor repeat a member.
  ThreadPool pool(4);
  std::atomic<int64_t> sum{0};
  for (int job = 0; job < 2000; ++job) {
    const int n = 1 + job % 4;
    pool.run(n, [&](int thread, int n_threads) {
      EXPECT_EQ(n_threads, n);
      sum += thread + 1;
    });
  }
  int64_t expect = 0;
  for (int job = 0; job < 2000; ++job) {
    const int n = 1 + job % 4;
    expect += n * (n + 1) / 2;
  }
  EXPECT_EQ(sum.load(), expect);
  EXPECT_THROW(pool.run(4,
                        [](int thread, int) {
                          if (thread == 3) throw std::runtime_error("member 3");
                        }),
               std::runtime_error);
}

}  // namespace
}  // namespace shardlm
