// The paged-KV kernels (store_kv, paged_attention) of kernels/cpu against their kernels/ref
// twins on random inputs (never zeros), for every ISA level this machine runs and 1 and 3
// threads: every KV dtype, shuffled non-contiguous block tables, block sizes 16 and 5, steps
// mixing decode sequences and prefill chunks that start mid-sequence, MHA / GQA / MQA, sliding
// window on and off, long decode contexts (split-K), fast and deterministic mode. Also the
// deterministic mode's promise (bit-identical rows whatever the step, the chunking and the
// thread count) and the link to the single-sequence ref::attention.
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
    case DType::kF32:
      return 1e-6f;
    case DType::kF16:
      return 1e-6f;
    case DType::kBF16:
      return 1e-6f;
  }
  return 0;
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<Isa, int>>& info) {
  return std::string(cpu::isa_name(std::get<0>(info.param))) + "_" +
         std::to_string(std::get<1>(info.param)) + "_threads";
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

// Runs both twins on one step and compares.
void check_step(const cpu::Context& ctx, const Pools& pools, const Step& step, int64_t n_head,
                int64_t window, bool det, uint64_t seed, const std::string& what) {
  const int64_t hd = pools.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto q = random_floats(static_cast<size_t>(step.n_tokens() * n_head * hd), seed, 2.0f);
  std::vector<float> a(q.size()), b(q.size(), NAN);
  ref::paged_attention(q.data(), n_head, pools.view(), step.view(), window, scale, det, a.data());
  cpu::paged_attention(ctx, q.data(), n_head, pools.view(), step.view(), window, scale, det,
                       b.data());
  EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), attn_tol(pools.dtype))
      << what << " " << dtype_name(pools.dtype) << " bs " << pools.block_size << " heads " << n_head
      << "/" << pools.n_head_kv << " hd " << hd << " window " << window
      << (det ? " deterministic" : " fast");
}

void check_store_kv(const cpu::Context& ctx, int64_t n_tokens, int64_t n_slots) {
  const int64_t n_head_kv = 3, head_dim = 20, row = n_head_kv * head_dim;
  auto k = random_floats(static_cast<size_t>(n_tokens * row), 40, 3.0f);
  auto v = random_floats(static_cast<size_t>(n_tokens * row), 41, 3.0f);
  // Rounding edge cases: ties to even, f16 overflow and subnormals, inf, NaN.
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
  // Slots shuffled over the pool; every 5th token skipped.
  std::vector<int64_t> slots(static_cast<size_t>(n_slots));
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), std::mt19937_64(42));
  slots.resize(static_cast<size_t>(n_tokens));
  for (size_t t = 0; t < slots.size(); t += 5) slots[t] = -1;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    const auto init_k = encode(random_floats(static_cast<size_t>(n_slots * row), 43), dt);
    const auto init_v = encode(random_floats(static_cast<size_t>(n_slots * row), 44), dt);
    auto rk = init_k, rv = init_v, ck = init_k, cv = init_v;
    ref::store_kv(k.data(), v.data(), slots.data(), n_tokens, n_head_kv, head_dim, dt, rk.data(),
                  rv.data());
    cpu::store_kv(ctx, k.data(), v.data(), slots.data(), n_tokens, n_head_kv, head_dim, dt,
                  ck.data(), cv.data());
    EXPECT_TRUE(rk == ck && rv == cv) << dtype_name(dt) << " n_tokens " << n_tokens;
    // Stored rows are the dtype.h conversion; slots no token names are untouched.
    const size_t row_bytes = static_cast<size_t>(row) * dtype_size(dt);
    std::vector<bool> written(static_cast<size_t>(n_slots), false);
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (slots[t] < 0) continue;
      written[static_cast<size_t>(slots[t])] = true;
      std::vector<uint8_t> expect_k(row_bytes), expect_v(row_bytes);
      convert_dtype(k.data() + t * row, DType::kF32, expect_k.data(), dt, static_cast<size_t>(row));
      convert_dtype(v.data() + t * row, DType::kF32, expect_v.data(), dt, static_cast<size_t>(row));
      EXPECT_EQ(std::memcmp(ck.data() + slots[t] * row_bytes, expect_k.data(), row_bytes), 0)
          << dtype_name(dt) << " token " << t;
      EXPECT_EQ(std::memcmp(cv.data() + slots[t] * row_bytes, expect_v.data(), row_bytes), 0)
          << dtype_name(dt) << " token " << t;
    }
    for (int64_t s = 0; s < n_slots; ++s) {
      if (written[static_cast<size_t>(s)]) continue;
      EXPECT_EQ(std::memcmp(ck.data() + s * row_bytes, init_k.data() + s * row_bytes, row_bytes),
                0);
      EXPECT_EQ(std::memcmp(cv.data() + s * row_bytes, init_v.data() + s * row_bytes, row_bytes),
                0);
    }
  }
}

TEST_P(PagedKernelTest, StoreKvMatchesRefBitExact) {
  check_store_kv(ctx_, 37, 64);     // one thread's share
  check_store_kv(ctx_, 900, 1000);  // split over the pool
}

TEST_P(PagedKernelTest, PagedAttentionMatchesRefMixedSteps) {
  // One step mixes: a first decode (1 key), decodes at 37 and 3 blocks + 1 keys, a 2-token
  // decode (row path with two rows of different lengths), a prefill chunk in the middle of a
  // sequence (9 tokens at 20..28), a 40-token prefill from 0 (tiled; 2 tiles at 4+ heads per
  // group), a chunk after a long prefix (6 tokens at 150..155) and a sequence with no tokens.
  struct Heads {
    int64_t n_head, n_head_kv, head_dim;
  };
  for (int64_t bs : {16, 5}) {
    for (const Heads& h : {Heads{4, 4, 32}, Heads{6, 2, 20}, Heads{8, 2, 128}, Heads{4, 1, 64}}) {
      for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
        struct Seq {
          int64_t q_start, n_q;
        };
        const Seq seqs[] = {{0, 1},  {36, 1}, {3 * bs, 1}, {48, 2},
                            {20, 9}, {0, 40}, {150, 6},    {10, 0}};
        int64_t need = 0;
        for (const Seq& s : seqs) need += blocks_for(s.q_start + s.n_q, bs);
        const Pools pools(need + 7, bs, h.n_head_kv, h.head_dim, dt, 50 + bs);
        BlockAlloc alloc(need + 7, 60 + bs);
        std::vector<StepSeq> ss;
        for (const Seq& s : seqs) {
          ss.push_back(
              {alloc.take(blocks_for(s.q_start + s.n_q, bs)), positions(s.q_start, s.n_q)});
        }
        const Step step(ss);
        for (int64_t window : {0, 13}) {
          for (bool det : {false, true}) {
            check_step(ctx_, pools, step, h.n_head, window, det, 70, "mixed step");
          }
        }
      }
    }
  }
}

TEST_P(PagedKernelTest, PagedAttentionLongContextDecode) {
  // Decodes over > 1000 keys: with 3 threads a lone sequence, or few sequences, are split into
  // key ranges (split-K) whose partial softmaxes are merged; 1 thread runs them whole.
  for (DType dt : {DType::kBF16, DType::kF32}) {
    for (const std::vector<int64_t>& lens :
         {std::vector<int64_t>{2000}, std::vector<int64_t>{1100, 1500, 700, 1}}) {
      const int64_t bs = 16;
      int64_t need = 0;
      for (int64_t n : lens) need += blocks_for(n, bs);
      const Pools pools(need + 3, bs, 2, 128, dt, 80);
      BlockAlloc alloc(need + 3, 81);
      std::vector<StepSeq> ss;
      for (int64_t n : lens) ss.push_back({alloc.take(blocks_for(n, bs)), positions(n - 1, 1)});
      const Step step(ss);
      for (int64_t window : {0, 300}) {
        for (bool det : {false, true}) {
          check_step(ctx_, pools, step, 8, window, det, 82,
                     "long decode x" + std::to_string(lens.size()));
        }
      }
    }
  }
}

TEST_P(PagedKernelTest, PagedAttentionLongPrefillChunk) {
  // A 70-token chunk after a 1200-token prefix: tiled items over many key chunks.
  const int64_t bs = 16, n_ctx = 1270;
  const Pools pools(blocks_for(n_ctx, bs) + 2, bs, 2, 64, DType::kBF16, 90);
  BlockAlloc alloc(blocks_for(n_ctx, bs) + 2, 91);
  const Step step({{alloc.take(blocks_for(n_ctx, bs)), positions(1200, 70)}});
  for (bool det : {false, true}) check_step(ctx_, pools, step, 6, 0, det, 92, "long prefill");
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
  for (DType dt : {DType::kBF16, DType::kF32}) {
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

TEST_P(PagedKernelTest, IdentityBlockTableMatchesSingleSequenceAttention) {
  // f32 pool whose block table is the identity: the pool is a contiguous cache (row j =
  // position j), so the paged ops must agree with the single-sequence ref::attention.
  const int64_t bs = 16, n_kv = 77, n_head = 6, n_head_kv = 2, hd = 32;
  const Pools pools(blocks_for(n_kv, bs), bs, n_head_kv, hd, DType::kF32, 110);
  std::vector<int32_t> identity(static_cast<size_t>(blocks_for(n_kv, bs)));
  std::iota(identity.begin(), identity.end(), 0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto* k = reinterpret_cast<const float*>(pools.k.data());
  const auto* v = reinterpret_cast<const float*>(pools.v.data());
  for (int64_t n_tokens : {1, 3, 20}) {
    const Step step({{identity, positions(n_kv - n_tokens, n_tokens)}});
    for (int64_t window : {0, 9}) {
      for (bool det : {false, true}) {
        const auto q = random_floats(static_cast<size_t>(n_tokens * n_head * hd), 111, 2.0f);
        std::vector<float> a(q.size()), b(q.size(), NAN), c(q.size(), NAN);
        ref::attention(q.data(), k, v, step.pos.data(), n_tokens, n_kv, n_head, n_head_kv, hd,
                       window, scale, a.data());
        ref::paged_attention(q.data(), n_head, pools.view(), step.view(), window, scale, det,
                             b.data());
        cpu::paged_attention(ctx_, q.data(), n_head, pools.view(), step.view(), window, scale, det,
                             c.data());
        EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 1e-6f) << n_tokens << " " << window;
        EXPECT_LE(max_abs_diff(a.data(), c.data(), a.size()), attn_tol(DType::kF32))
            << n_tokens << " " << window;
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

std::vector<std::tuple<Isa, int>> all_params() {
  std::vector<std::tuple<Isa, int>> p;
  for (Isa isa : cpu::runnable_isas()) {
    for (int threads : {1, 3}) p.emplace_back(isa, threads);
  }
  return p;
}

INSTANTIATE_TEST_SUITE_P(IsaThreads, PagedKernelTest, ::testing::ValuesIn(all_params()),
                         param_name);

}  // namespace
}  // namespace shardlm
