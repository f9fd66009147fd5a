// The CPU paged-attention kernel's deterministic mode (kernels/cpu), which the op-test harness
// cannot see through the Backend interface: for every ISA level this machine runs, one
// sequence's rows are the same bits computed alone, among other sequences, in different chunks
// and with 1 or 3 threads, and still match kernels/ref. Also the ref's own promises (store_kv
// writes the dtype.h conversion and skips negative slots; gather_kv + attention equals
// paged_attention). store_kv / paged_attention against kernels/ref on every backend, every KV
// dtype and every layout: tests/ops/backend_ops_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/ref/ref_ops.h"
#include "tests/runtime/isa_threads_param.h"
#include "tests/runtime/paged_test_util.h"
#include "tests/runtime/test_util.h"

namespace shardlm {
namespace {

using cpu::Isa;
using test::encode;
using test::random_floats;

// Largest |a - b|; infinity when any value is NaN (outputs start as NaN, so a row the kernel
// never wrote fails instead of passing unnoticed).
float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// Mean |a - b|; infinity when any value is NaN.
double mean_abs_diff(const float* a, const float* b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (std::isnan(d)) return INFINITY;
    sum += d;
  }
  return n == 0 ? 0 : sum / static_cast<double>(n);
}

// Bitwise equality, naming the first element that differs.
::testing::AssertionResult same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << "element " << i << " of " << a.size() << ": " << a[i] << " vs " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Absolute tolerance of an attention output (a convex combination of V values in [-1, 1]) by
// KV dtype. Both sides read the same stored values and widen f16/bf16 exactly, so every dtype
// differs from the double-precision oracle only by f32 accumulation and the 2-ulp exp.
float attn_tol(DType d) {
  switch (d) {
    case DType::kInt8:  // never here: the KV cache is a float type
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF32:
      return 1e-6f;
    case DType::kF16:
      return 1e-6f;
    case DType::kBF16:
      return 1e-6f;
    case DType::kF8E4M3:
      return 1e-6f;
  }
  return 0;
}

class PagedKernelTest : public ::testing::TestWithParam<std::tuple<Isa, int>> {
 protected:
  ThreadPool pool_{std::get<1>(GetParam())};
  cpu::Workspace ws_;
  cpu::Context ctx_{pool_, std::get<0>(GetParam()), ws_};
};

using test::BlockAlloc;
using test::Pools;

int64_t blocks_for(int64_t n_pos, int64_t bs) {
  return (n_pos + bs - 1) / bs;
}

// One sequence of a step: its block table and its query tokens' positions.
struct StepSeq {
  std::vector<int32_t> blocks;
  std::vector<int32_t> pos;
};

// A step's layout arrays (block tables padded with -1 to one more column than the longest).
struct Step {
  std::vector<int32_t> pos, seq_starts{0}, block_table;
  int64_t max_blocks = 0;

  explicit Step(const std::vector<StepSeq>& seqs) {
    for (const StepSeq& s : seqs) max_blocks = std::max<int64_t>(max_blocks, s.blocks.size());
    ++max_blocks;
    for (const StepSeq& s : seqs) {
      pos.insert(pos.end(), s.pos.begin(), s.pos.end());
      seq_starts.push_back(static_cast<int32_t>(pos.size()));
      std::vector<int32_t> row(static_cast<size_t>(max_blocks), -1);
      std::copy(s.blocks.begin(), s.blocks.end(), row.begin());
      block_table.insert(block_table.end(), row.begin(), row.end());
    }
  }
  int64_t n_tokens() const { return static_cast<int64_t>(pos.size()); }
  StepLayoutView view() const {
    return {pos.data(),         n_tokens(),
            seq_starts.data(),  static_cast<int64_t>(seq_starts.size()) - 1,
            block_table.data(), max_blocks};
  }
};

std::vector<int32_t> positions(int64_t first, int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), static_cast<int32_t>(first));
  return p;
}

// Deterministic mode: the rows of one sequence X (positions 0..n_x-1, its own queries per
// position) must be the same bits computed alone, among other sequences, in different chunks
// (the KV of earlier chunks stored, later slots holding garbage) and with 1 or 3 threads.
TEST_P(PagedKernelTest, DeterministicRowsIndependentOfStepChunkingAndThreads) {
  const int64_t bs = 16, n_x = 150, n_head = 8, n_head_kv = 2, hd = 64;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  ThreadPool one(1), three(3);
  cpu::Workspace ws1, ws3;
  const cpu::Context c1{one, ctx_.isa, ws1}, c3{three, ctx_.isa, ws3};
  for (DType dt : {DType::kBF16, DType::kF32, DType::kF8E4M3}) {
    for (int64_t window : {0, 40}) {
      const int64_t n_blocks = 64;
      Pools pools(n_blocks, bs, n_head_kv, hd, dt, 100);  // random garbage everywhere
      BlockAlloc alloc(n_blocks, 101);
      const auto x_blocks = alloc.take(blocks_for(n_x, bs));
      const auto y_blocks = alloc.take(blocks_for(300, bs));
      const auto z_blocks = alloc.take(blocks_for(60, bs));
      const auto xq = random_floats(static_cast<size_t>(n_x * n_head * hd), 102, 2.0f);
      const auto xk = random_floats(static_cast<size_t>(n_x * n_head_kv * hd), 103);
      const auto xv = random_floats(static_cast<size_t>(n_x * n_head_kv * hd), 104);
      std::vector<int64_t> x_slots(static_cast<size_t>(n_x));
      for (int64_t j = 0; j < n_x; ++j) x_slots[j] = x_blocks[j / bs] * bs + j % bs;
      // Stores X's positions [p0, p1) (what the engine does before each step's attention).
      auto store = [&](int64_t p0, int64_t p1) {
        cpu::store_kv(c1, xk.data() + p0 * n_head_kv * hd, xv.data() + p0 * n_head_kv * hd,
                      x_slots.data() + p0, p1 - p0, n_head_kv, hd, dt, pools.k.data(),
                      pools.v.data());
      };
      // X's rows [p0, p1) in a step of `seqs` where X is sequence `x_index`; q of the others
      // random. Returns X's output rows.
      auto run = [&](const cpu::Context& ctx, std::vector<StepSeq> seqs, size_t x_index, int64_t p0,
                     int64_t p1) {
        seqs.insert(seqs.begin() + static_cast<std::ptrdiff_t>(x_index),
                    StepSeq{x_blocks, positions(p0, p1 - p0)});
        const Step step(seqs);
        auto q = random_floats(static_cast<size_t>(step.n_tokens() * n_head * hd), 105, 2.0f);
        const int64_t row0 = step.seq_starts[x_index];
        std::copy(xq.begin() + p0 * n_head * hd, xq.begin() + p1 * n_head * hd,
                  q.begin() + row0 * n_head * hd);
        std::vector<float> out(q.size(), NAN);
        cpu::paged_attention(ctx, q.data(), n_head, pools.view(), step.view(), window, scale, true,
                             out.data());
        return std::vector<float>(out.begin() + row0 * n_head * hd,
                                  out.begin() + (row0 + p1 - p0) * n_head * hd);
      };
      const std::string what = std::string(dtype_name(dt)) + " window " + std::to_string(window);

      // (c) chunked as the engine would: prefill chunks of 37, 1, 3 (both row-path sizes), 59
      // and 49 tokens, then a decode.
      std::vector<float> chunked;
      for (auto [p0, p1] : {std::pair<int64_t, int64_t>{0, 37},
                            {37, 38},
                            {38, 41},
                            {41, 100},
                            {100, 149},
                            {149, 150}}) {
        store(p0, p1);
        const auto rows = run(ctx_, {}, 0, p0, p1);
        chunked.insert(chunked.end(), rows.begin(), rows.end());
      }
      // (a) alone, all 150 tokens in one step, 1 and 3 threads (d).
      const auto alone1 = run(c1, {}, 0, 0, n_x);
      const auto alone3 = run(c3, {}, 0, 0, n_x);
      // (b) among a long decode, a prefill chunk and a 2-token decode (other sequences' KV is
      // whatever the pool holds).
      const std::vector<StepSeq> others = {{y_blocks, positions(299, 1)},
                                           {z_blocks, positions(30, 30)},
                                           {alloc.take(3), positions(20, 2)}};
      const auto mixed = run(ctx_, others, 1, 0, n_x);
      // And X's last rows only, as a 1-token decode in a crowd.
      const auto last = run(c3, others, 3, n_x - 1, n_x);

      EXPECT_TRUE(same_bits(alone1, alone3)) << what << ": 1 vs 3 threads";
      EXPECT_TRUE(same_bits(alone1, chunked)) << what << ": alone vs chunked";
      EXPECT_TRUE(same_bits(alone1, mixed)) << what << ": alone vs among others";
      EXPECT_TRUE(same_bits(std::vector<float>(alone1.end() - n_head * hd, alone1.end()), last))
          << what << ": last row alone vs decoded among others";

      // And it is still attention: against the ref on X's stored KV.
      const Step step({{x_blocks, positions(0, n_x)}});
      std::vector<float> expect(alone1.size());
      ref::paged_attention(xq.data(), n_head, pools.view(), step.view(), window, scale, true,
                           expect.data());
      EXPECT_LE(max_abs_diff(expect.data(), alone1.data(), expect.size()), attn_tol(dt)) << what;
    }
  }
}

// Decode rows (the row path) read a bf16 or f8e4m3 pool in place, widening in registers; that
// must give the bits of the same values held in an f32 pool (widened copies), in fast and
// deterministic mode, for head dims the in-place kernels cover (64, 128) and one they do not
// (32: the widening path), with several sequences of different lengths (split-K in fast mode)
// and a window.
TEST_P(PagedKernelTest, PoolReadInPlaceEqualsAnF32PoolOfTheSameValues) {
  const int64_t bs = 16, n_head = 8, n_head_kv = 2, n_blocks = 48;
  for (DType dt : {DType::kBF16, DType::kF8E4M3})
    for (int64_t hd : {64, 128, 32}) {
      Pools bf(n_blocks, bs, n_head_kv, hd, dt, 200 + hd);
      Pools f32(n_blocks, bs, n_head_kv, hd, DType::kF32, 300);
      // random_floats stays above 2^-6: every 7th f8e4m3 value becomes a subnormal or zero code.
      if (dt == DType::kF8E4M3) {
        for (std::vector<uint8_t>* pool : {&bf.k, &bf.v}) {
          for (size_t i = 3; i < pool->size(); i += 7)
            (*pool)[i] = static_cast<uint8_t>((i % 16) ^ (i % 8 == 0 ? 0x80 : 0));
        }
      }
      // f32 pool = the narrow pool's values, widened.
      for (auto [src, dst] : {std::pair{&bf.k, &f32.k}, std::pair{&bf.v, &f32.v}}) {
        convert_dtype(src->data(), dt, dst->data(), DType::kF32, src->size() / dtype_size(dt));
      }
      BlockAlloc alloc(n_blocks, 201);
      const Step step({{alloc.take(blocks_for(300, bs)), positions(299, 1)},
                       {alloc.take(blocks_for(70, bs)), positions(67, 3)},
                       {alloc.take(blocks_for(17, bs)), positions(16, 1)},
                       {alloc.take(blocks_for(130, bs)), positions(128, 2)}});
      const auto q = random_floats(static_cast<size_t>(step.n_tokens() * n_head * hd), 202, 2.0f);
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      for (bool det : {false, true}) {
        for (int64_t window : {0, 45}) {
          std::vector<float> a(q.size(), NAN), b(q.size(), NAN);
          cpu::paged_attention(ctx_, q.data(), n_head, bf.view(), step.view(), window, scale, det,
                               a.data());
          cpu::paged_attention(ctx_, q.data(), n_head, f32.view(), step.view(), window, scale, det,
                               b.data());
          EXPECT_TRUE(same_bits(a, b))
              << dtype_name(dt) << " head_dim " << hd << (det ? " deterministic" : " fast")
              << " window " << window;
        }
      }
    }
}

// Context::touch_kv only reads (each chunk's K and V lines, in address order, before its
// scores): on and off give the same bits for decode rows (split-K with 3 threads), rows of a few
// tokens, windows, both modes and both activation modes. The block tables end in -1, so a touch
// past a row's last key would read before the pool (ASan reports it in the sanitizer run).
// Touched chunks score a GQA group's rows together where attn_scores_group_bf16_dot covers the
// group and head_dim (groups of 4 with head_dim 64, of 2 with 128; not 4 with 128).
TEST_P(PagedKernelTest, TouchingTheKvFirstChangesNoBit) {
  const int64_t bs = 16, n_head_kv = 2, n_blocks = 48;
  for (auto [n_head, hd] : {std::pair<int64_t, int64_t>{8, 128}, {8, 64}, {4, 128}}) {
    const Pools pools(n_blocks, bs, n_head_kv, hd, DType::kBF16, 500 + hd);
    BlockAlloc alloc(n_blocks, 501);
    const Step step({{alloc.take(blocks_for(300, bs)), positions(299, 1)},
                     {alloc.take(blocks_for(70, bs)), positions(67, 3)},
                     {alloc.take(blocks_for(17, bs)), positions(16, 1)},
                     {alloc.take(blocks_for(130, bs)), positions(128, 2)}});
    const auto q = random_floats(static_cast<size_t>(step.n_tokens() * n_head * hd), 502, 2.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (bool bf16 : {false, true}) {
      for (bool det : {false, true}) {
        for (int64_t window : {0, 45}) {
          std::vector<float> out[2];
          for (bool touch : {false, true}) {
            cpu::Context ctx{ctx_.pool, ctx_.isa, ctx_.workspace};
            ctx.bf16_activations = bf16;
            ctx.touch_kv = touch;
            out[touch].assign(q.size(), NAN);
            cpu::paged_attention(ctx, q.data(), n_head, pools.view(), step.view(), window, scale,
                                 det, out[touch].data());
          }
          EXPECT_TRUE(same_bits(out[0], out[1]))
              << "heads " << n_head << ", head_dim " << hd << (bf16 ? " bf16" : " f32")
              << " activations" << (det ? " deterministic" : " fast") << " window " << window;
        }
      }
    }
  }
}

// bf16 activations (Context::bf16_activations) against the twin that rounds the same operands,
// ref::paged_attention_bf16_activations: bf16 queries, bf16 softmax numerators exp(s - max).
// Every numerator is within 2^-9 of the twin's on both sides, so |out - twin| <= 2 * 2^-9 *
// max|v| = 2^-8 (V in [-1, 1]) everywhere. Where each row's keys are one chunk of its item
// (fast mode, <= 64 keys for decode rows and <= 128 for prefill tiles) the kernel's numerators
// are the twin's (the same max; the exps differ by an ulp or two, which moves a rounding only
// near a tie), so the rows agree except at those few elements: their mean difference is checked
// to be far below that of the exact ref, so a path that does not round fails.
TEST_P(PagedKernelTest, Bf16ActivationsMatchTheirRefTwin) {
  constexpr double kTightMean = 1e-6;  // measured <= 6e-8; the exact ref: >= 1.6e-4
  constexpr float kBound = 1.0f / 256;
  const int64_t bs = 16, n_head = 8, n_head_kv = 2, n_blocks = 80;
  cpu::Context ctx{ctx_.pool, ctx_.isa, ctx_.workspace};
  ctx.bf16_activations = true;
  // The bf16 tile (bf16 or f8e4m3 pool, head_dim a multiple of 32) and the f32 loops on rounded
  // values.
  // Below AVX-512 every case takes the f32 loops: two of them cover those (the rest cost minutes
  // under ASan and test nothing more there).
  const std::vector<std::pair<DType, int64_t>> all = {{DType::kBF16, 64}, {DType::kBF16, 128},
                                                      {DType::kBF16, 48}, {DType::kF32, 64},
                                                      {DType::kF16, 128}, {DType::kF8E4M3, 128}};
  const std::vector<std::pair<DType, int64_t>> f32_loops = {{DType::kBF16, 64}, {DType::kF16, 128}};
  for (auto [dt, hd] : ctx.isa >= Isa::kAvx512 ? all : f32_loops) {
    {
      const Pools pools(n_blocks, bs, n_head_kv, hd, dt, 400 + hd);
      BlockAlloc alloc(n_blocks, 401);
      // Prefill tiles (100 and 37 tokens from 0, 30 tokens continuing at 60) and decode rows.
      const Step one_chunk({{alloc.take(blocks_for(100, bs)), positions(0, 100)},
                            {alloc.take(blocks_for(90, bs)), positions(60, 30)},
                            {alloc.take(blocks_for(37, bs)), positions(0, 37)},
                            {alloc.take(blocks_for(51, bs)), positions(50, 1)},
                            {alloc.take(blocks_for(23, bs)), positions(20, 3)}});
      // Several chunks: a 150-token prompt, a 16-token continuation and a decode row over 300
      // keys (split-K in fast mode with threads).
      const Step chunks({{alloc.take(blocks_for(150, bs)), positions(0, 150)},
                         {alloc.take(blocks_for(300, bs)), positions(284, 16)},
                         {alloc.take(blocks_for(300, bs)), positions(299, 1)}});
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      for (const Step* step : {&one_chunk, &chunks}) {
        const size_t n = static_cast<size_t>(step->n_tokens() * n_head * hd);
        const auto q = random_floats(n, 402 + hd, 2.0f);
        for (int64_t window : {0, 45}) {
          std::vector<float> twin(n, NAN), exact(n, NAN);
          ref::paged_attention_bf16_activations(q.data(), n_head, pools.view(), step->view(),
                                                window, scale, twin.data());
          if (step == &one_chunk) {  // only compared there (the refs dominate under ASan)
            ref::paged_attention(q.data(), n_head, pools.view(), step->view(), window, scale, false,
                                 exact.data());
          }
          for (bool det : {false, true}) {
            std::vector<float> got(n, NAN);
            cpu::paged_attention(ctx, q.data(), n_head, pools.view(), step->view(), window, scale,
                                 det, got.data());
            const std::string what =
                std::string(dtype_name(dt)) + " head_dim " + std::to_string(hd) +
                (step == &one_chunk ? " one chunk" : " chunks") +
                (det ? " deterministic" : " fast") + " window " + std::to_string(window);
            EXPECT_LE(max_abs_diff(got.data(), twin.data(), n), kBound) << what;
            if (step == &one_chunk && !det) {
              const double off = mean_abs_diff(got.data(), twin.data(), n);
              const double unrounded = mean_abs_diff(exact.data(), twin.data(), n);
              EXPECT_LT(off, kTightMean) << what;
              EXPECT_GT(unrounded, 50 * kTightMean) << what << ": the exact ref is as close";
            }
          }
        }
      }
    }
  }
}

TEST(PagedRefTest, GatherKvFollowsShuffledBlockTable) {
  // ref::gather_kv through a shuffled table, then the single-sequence ref::attention, equals
  // ref::paged_attention on the same table (bf16 pool, odd block size).
  const int64_t bs = 5, n_kv = 23, n_head = 4, n_head_kv = 2, hd = 12;
  const Pools pools(9, bs, n_head_kv, hd, DType::kBF16, 120);
  BlockAlloc alloc(9, 121);
  const Step step({{alloc.take(blocks_for(n_kv, bs)), positions(n_kv - 4, 4)}});
  std::vector<float> k(static_cast<size_t>(n_kv * n_head_kv * hd)), v(k.size());
  ref::gather_kv(pools.view(), step.block_table.data(), n_kv, k.data(), v.data());
  for (int64_t j = 0; j < n_kv; ++j) {  // row j is position j's stored row
    const int64_t slot = step.block_table[j / bs] * bs + j % bs;
    for (int64_t i = 0; i < n_head_kv * hd; ++i) {
      ASSERT_EQ(k[j * n_head_kv * hd + i],
                ref::load_weight(pools.k.data(), DType::kBF16, slot * n_head_kv * hd + i));
    }
  }
  const auto q = random_floats(static_cast<size_t>(4 * n_head * hd), 122);
  std::vector<float> a(q.size()), b(q.size());
  ref::attention(q.data(), k.data(), v.data(), step.pos.data(), 4, n_kv, n_head, n_head_kv, hd, 7,
                 0.3f, a.data());
  ref::paged_attention(q.data(), n_head, pools.view(), step.view(), 7, 0.3f, false, b.data());
  EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 1e-6f);
}

TEST(PagedRefTest, StoreKvWritesTheDtypeConversionAndSkipsNegativeSlots) {
  // The oracle's promise, which backend_ops_test relies on when it compares pools bytewise:
  // each stored row is dtype.h's conversion (specials included), slots no token names keep
  // their bytes.
  const int64_t n_tokens = 37, n_slots = 64, n_head_kv = 3, head_dim = 20,
                row = n_head_kv * head_dim;
  auto k = random_floats(static_cast<size_t>(n_tokens * row), 40, 3.0f);
  auto v = random_floats(static_cast<size_t>(n_tokens * row), 41, 3.0f);
  const float specials[] = {1.0f + 0x1p-8f,
                            1.0f + 0x1p-8f + 0x1p-9f,
                            65520.0f,
                            70000.0f,
                            1e-6f,
                            -3e-8f,
                            INFINITY,
                            -INFINITY,
                            NAN,
                            1.0f + 0x1p-11f,
                            0x1p-15f + 0x1p-25f};
  for (size_t i = 0; i < std::size(specials); ++i) k[i * 7] = v[i * 5 + 1] = specials[i];
  std::vector<int64_t> slots(static_cast<size_t>(n_slots));
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), std::mt19937_64(42));
  slots.resize(static_cast<size_t>(n_tokens));
  for (size_t t = 0; t < slots.size(); t += 5) slots[t] = -1;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3}) {
    const auto init_k = encode(random_floats(static_cast<size_t>(n_slots * row), 43), dt);
    const auto init_v = encode(random_floats(static_cast<size_t>(n_slots * row), 44), dt);
    auto pk = init_k, pv = init_v;
    ref::store_kv(k.data(), v.data(), slots.data(), n_tokens, n_head_kv, head_dim, dt, pk.data(),
                  pv.data());
    const size_t row_bytes = static_cast<size_t>(row) * dtype_size(dt);
    std::vector<bool> written(static_cast<size_t>(n_slots), false);
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (slots[t] < 0) continue;
      written[static_cast<size_t>(slots[t])] = true;
      std::vector<uint8_t> expect_k(row_bytes), expect_v(row_bytes);
      convert_dtype(k.data() + t * row, DType::kF32, expect_k.data(), dt, static_cast<size_t>(row));
      convert_dtype(v.data() + t * row, DType::kF32, expect_v.data(), dt, static_cast<size_t>(row));
      EXPECT_EQ(std::memcmp(pk.data() + slots[t] * row_bytes, expect_k.data(), row_bytes), 0)
          << dtype_name(dt) << " token " << t;
      EXPECT_EQ(std::memcmp(pv.data() + slots[t] * row_bytes, expect_v.data(), row_bytes), 0)
          << dtype_name(dt) << " token " << t;
    }
    for (int64_t s = 0; s < n_slots; ++s) {
      if (written[static_cast<size_t>(s)]) continue;
      EXPECT_EQ(std::memcmp(pk.data() + s * row_bytes, init_k.data() + s * row_bytes, row_bytes),
                0);
      EXPECT_EQ(std::memcmp(pv.data() + s * row_bytes, init_v.data() + s * row_bytes, row_bytes),
                0);
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

INSTANTIATE_TEST_SUITE_P(IsaThreads, PagedKernelTest, ::testing::ValuesIn(all_params()),
                         test::isa_threads_name);

}  // namespace
}  // namespace shardlm
