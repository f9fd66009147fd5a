// The Vulkan paged-KV ops (store_kv, paged_attention) against their kernels/ref twins, and the
// step engine on the Vulkan backend against the CPU backend's step engine.
//   - store_kv: bit-exact for every KV dtype (specials included: NaN, infinities, f16 overflow
//     and subnormals, rounding ties), shuffled slots, skipped slots' bytes untouched;
//   - paged_attention: random non-contiguous block tables, decode tokens mixed with prefill
//     chunks that start mid-sequence, block sizes 16 and odd, sliding window on and off,
//     MHA / GQA / MQA, every KV dtype, a decode context over 1000 keys, head_dim 256; within
//     the tolerance of the contiguous attention test (ops_test.cpp);
//   - decode steps whose block tables grow keep replaying recorded command buffers (the ops
//     alone, and a real model's Transformer::step), with logits bit-identical to re-recording;
//   - malformed layouts and slots are clear errors naming the op;
//   - end to end: 4 requests batched through a StepEngine on "vulkan" at TP 1 and 2 give the
//     CPU step engine's greedy tokens, logits within the Vulkan parity tolerance (f32 KV).
// Each op test runs on every code path of ops_test.cpp (subgroup or shared-memory reductions,
// 16-bit storage or 32-bit words, mapped or staged memory, replay on or off, split-K or not).
// Not here: the contiguous-cache ops (ops_test.cpp), the scheduler and block manager
// (tests/batching).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "formats/pack_reader.h"
#include "kernels/ref/ref_ops.h"
#include "packer/packer.h"
#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/step_engine.h"
#include "runtime/model/kv_pool.h"
#include "runtime/model/step_input.h"
#include "runtime/model/transformer.h"
#include "tests/runtime/test_util.h"
#include "tests/vulkan/vk_test_util.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using test::download_f32;
using test::encode;
using test::max_abs_diff;
using test::random_floats;
using test::upload;
using test::upload_f32;

struct Variant {
  const char* name;
  bool subgroup, s16, host_visible, reuse;
  int attention_splits;  // -1 auto (1 on lavapipe)
};
constexpr std::array<Variant, 4> kVariants = {{
    {"default", true, true, true, true, -1},
    {"no_subgroup_no_16bit_split3", false, false, true, true, 3},
    {"staged_memory_split16", true, false, false, true, 16},
    {"no_reuse_16bit_tree", false, true, true, false, 1},
}};

constexpr DType kDtypes[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr float kAttnTol = 2e-6f;  // ops_test.cpp AttentionMatchesRefPrefillDecodeWindowGqa

class VulkanPagedOps : public ::testing::TestWithParam<int> {
 protected:
  static void TearDownTestSuite() {
    for (auto& b : backends_) b.reset();
  }
  void SetUp() override {
    auto& b = backends_[static_cast<size_t>(GetParam())];
    if (!b) {
      const Variant& v = kVariants[static_cast<size_t>(GetParam())];
      VulkanOptions o;
      o.allow_subgroup_ops = v.subgroup;
      o.storage_16bit = v.s16 ? 1 : 0;
      o.allow_host_visible = v.host_visible;
      o.reuse_command_buffers = v.reuse;
      o.attention_splits = v.attention_splits;
      b = test::make_test_backend(o);
    }
    be_ = b.get();
  }
  const Variant& variant() const { return kVariants[static_cast<size_t>(GetParam())]; }
  std::vector<uint8_t> download_bytes(const Tensor& t) {
    std::vector<uint8_t> out(t.nbytes());
    be_->copy_to_host(out.data(), t, out.size());
    return out;
  }
  VulkanBackend* be_ = nullptr;
  std::vector<std::unique_ptr<DeviceBuffer>> own_;  // destroyed before the shared backend

 private:
  static std::array<std::unique_ptr<VulkanBackend>, kVariants.size()> backends_;
};
std::array<std::unique_ptr<VulkanBackend>, kVariants.size()> VulkanPagedOps::backends_;

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// Random K/V rows with the conversions' hard cases mixed in.
std::vector<float> kv_inputs(size_t n, uint64_t seed) {
  std::vector<float> x = random_floats(n, seed, 3.0f);
  const float specials[] = {
      from_bits(0x7fc00001u),  // quiet NaN with payload
      from_bits(0xff800001u),  // signalling NaN, negative
      INFINITY,
      -INFINITY,
      65504.0f,                // f16 max
      65519.0f,                // rounds to f16 max
      65520.0f,                // rounds to f16 inf
      -1e6f,                   // f16 overflow
      from_bits(0x33000001u),  // just above half the smallest f16 subnormal
      from_bits(0x33000000u),  // exactly half: rounds to zero (even)
      from_bits(0x387fc000u),  // f16 subnormal, a tie
      -3.0e-6f,                // f16 subnormal
      from_bits(0x3f808000u),  // bf16 tie, rounds down to even
      from_bits(0x3f818000u),  // bf16 tie, rounds up to even
      from_bits(0x3f800fffu),  // f16: just below a tie
      from_bits(0x3f801000u),  // f16 tie
      from_bits(0x00000123u),  // f32 subnormal
      from_bits(0x7f7fffffu),  // f32 max: bf16 rounds to inf
  };
  for (size_t i = 0; i < std::size(specials) && 3 * i < n; ++i) x[3 * i + 1] = specials[i];
  return x;
}

TEST_P(VulkanPagedOps, StoreKvBitExactShuffledSlotsSkipsUntouched) {
  SHARDLM_REQUIRE_VULKAN(be_);
  struct Shape {
    int64_t n_head_kv, head_dim, n_tokens, n_slots;
  };
  for (const Shape& sh : {Shape{3, 10, 37, 80}, Shape{2, 64, 5, 48}, Shape{1, 7, 9, 15}}) {
    const int64_t row = sh.n_head_kv * sh.head_dim;
    for (DType dt : kDtypes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " row " + std::to_string(row));
      const auto k = kv_inputs(static_cast<size_t>(sh.n_tokens * row), 101);
      const auto v = kv_inputs(static_cast<size_t>(sh.n_tokens * row), 102);
      // Distinct shuffled slots; every fourth token skipped.
      std::vector<int64_t> perm(static_cast<size_t>(sh.n_slots));
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), std::mt19937(103));
      std::vector<int64_t> slots(static_cast<size_t>(sh.n_tokens));
      for (size_t t = 0; t < slots.size(); ++t) slots[t] = t % 4 == 2 ? -1 : perm[t];
      const auto k0 = encode(random_floats(static_cast<size_t>(sh.n_slots * row), 104), dt);
      const auto v0 = encode(random_floats(static_cast<size_t>(sh.n_slots * row), 105), dt);
      std::vector<uint8_t> k_want = k0, v_want = v0;
      ref::store_kv(k.data(), v.data(), slots.data(), sh.n_tokens, sh.n_head_kv, sh.head_dim, dt,
                    k_want.data(), v_want.data());

      const Tensor tk = upload_f32(*be_, k, {sh.n_tokens, sh.n_head_kv, sh.head_dim}, own_);
      const Tensor tv = upload_f32(*be_, v, {sh.n_tokens, sh.n_head_kv, sh.head_dim}, own_);
      const Tensor kp = upload(*be_, k0, dt, {sh.n_slots, sh.n_head_kv, sh.head_dim}, own_);
      const Tensor vp = upload(*be_, v0, dt, {sh.n_slots, sh.n_head_kv, sh.head_dim}, own_);
      if (row % 2 != 0 && dt != DType::kF32 && !be_->uses_16bit_storage()) {
        try {  // 32-bit-word writes need even rows
          be_->store_kv(tk, tv, slots, kp, vp);
          FAIL() << "expected kUnsupported";
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), StatusCode::kUnsupported) << e.what();
          EXPECT_NE(std::string(e.what()).find("store_kv"), std::string::npos) << e.what();
        }
        continue;
      }
      be_->store_kv(tk, tv, slots, kp, vp);
      const auto k_got = download_bytes(kp), v_got = download_bytes(vp);
      EXPECT_TRUE(k_got == k_want) << "k pool differs";
      EXPECT_TRUE(v_got == v_want) << "v pool differs";
      const size_t es = dtype_size(dt);
      for (size_t i = 0; i < k_got.size(); i += es) {
        if (std::memcmp(&k_got[i], &k_want[i], es) != 0) {
          ADD_FAILURE() << "first k difference at element " << i / es;
          break;
        }
      }
      own_.clear();
    }
  }
}

// One sequence of a step: `n_past` positions already in the pool, `n_new` query tokens after.
struct SeqSpec {
  int64_t n_past, n_new;
};
struct PagedCase {
  const char* name;
  int64_t n_head, n_head_kv, head_dim, block_size, window;
  std::vector<SeqSpec> seqs;
};

// A random step over `c.seqs` in a pool with spare blocks, shuffled block ids; blocks wholly
// before every query's window are unmapped (-1) when `unmap_outside_window`.
struct PagedStep {
  int64_t n_blocks = 0, max_blocks = 0, n_tokens = 0;
  std::vector<int32_t> pos, seq_starts, block_table;
};
PagedStep make_step(const PagedCase& c, uint64_t seed, bool unmap_outside_window) {
  PagedStep st;
  std::vector<int64_t> need;
  int64_t total = 0;
  for (const SeqSpec& s : c.seqs) {
    need.push_back((s.n_past + s.n_new + c.block_size - 1) / c.block_size);
    total += need.back();
    st.max_blocks = std::max(st.max_blocks, need.back());
  }
  st.max_blocks += 1;  // -1 padded columns
  st.n_blocks = total + 5;
  std::vector<int32_t> ids(static_cast<size_t>(st.n_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(static_cast<uint32_t>(seed)));
  size_t next = 0;
  st.seq_starts.push_back(0);
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    const SeqSpec& sp = c.seqs[s];
    for (int64_t i = 0; i < st.max_blocks; ++i) {
      st.block_table.push_back(i < need[s] ? ids[next++] : -1);
    }
    for (int64_t t = 0; t < sp.n_new; ++t) st.pos.push_back(static_cast<int32_t>(sp.n_past + t));
    st.seq_starts.push_back(static_cast<int32_t>(st.pos.size()));
    if (unmap_outside_window && c.window > 0) {
      const int64_t lo = std::max<int64_t>(0, sp.n_past - c.window + 1);
      for (int64_t i = 0; (i + 1) * c.block_size <= lo; ++i) {
        st.block_table[s * static_cast<size_t>(st.max_blocks) + static_cast<size_t>(i)] = -1;
      }
    }
  }
  st.n_tokens = static_cast<int64_t>(st.pos.size());
  return st;
}

std::vector<PagedCase> paged_cases() {
  return {
      {"mha_bs16", 4, 4, 16, 16, 0, {{0, 7}, {20, 1}, {33, 5}, {15, 1}, {31, 2}}},
      {"gqa_bs5", 8, 2, 48, 5, 0, {{0, 1}, {9, 1}, {10, 12}, {47, 1}, {3, 4}}},
      {"mqa_bs16_window6", 8, 1, 32, 16, 6, {{40, 3}, {0, 10}, {63, 1}}},
      {"gqa_bs7_window20_hd30", 6, 3, 30, 7, 20, {{50, 1}, {5, 9}, {100, 2}}},
      {"long_decode_1500", 4, 2, 64, 16, 0, {{1500, 1}, {1100, 1}, {0, 3}}},
      {"hd256_bs3", 2, 1, 256, 3, 0, {{260, 1}, {30, 4}}},
      {"one_token", 2, 2, 8, 16, 0, {{0, 1}}},
  };
}

TEST_P(VulkanPagedOps, PagedAttentionMatchesRef) {
  SHARDLM_REQUIRE_VULKAN(be_);
  uint64_t seed = 200;
  float worst = 0;
  std::string worst_case;
  for (const PagedCase& c : paged_cases()) {
    for (DType dt : kDtypes) {
      ++seed;
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      const PagedStep st = make_step(c, seed, c.window > 0);
      const int64_t n_slots = st.n_blocks * c.block_size, T = st.n_tokens;
      const size_t pool_n = static_cast<size_t>(n_slots * c.n_head_kv * c.head_dim);
      const auto kb = encode(random_floats(pool_n, seed * 3), dt);
      const auto vb = encode(random_floats(pool_n, seed * 3 + 1), dt);
      const auto q = random_floats(static_cast<size_t>(T * c.n_head * c.head_dim), seed * 3 + 2);
      const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      const PagedKvView kv{kb.data(), vb.data(), dt, c.block_size, c.n_head_kv, c.head_dim};
      const StepLayoutView lv{st.pos.data(),         T,
                              st.seq_starts.data(),  static_cast<int64_t>(c.seqs.size()),
                              st.block_table.data(), st.max_blocks};
      std::vector<float> want(q.size());
      ref::paged_attention(q.data(), c.n_head, kv, lv, c.window, scale, false, want.data());

      const Tensor tq = upload_f32(*be_, q, {T, c.n_head, c.head_dim}, own_);
      const Tensor kp = upload(*be_, kb, dt, {n_slots, c.n_head_kv, c.head_dim}, own_);
      const Tensor vp = upload(*be_, vb, dt, {n_slots, c.n_head_kv, c.head_dim}, own_);
      const Tensor to =
          upload_f32(*be_, random_floats(q.size(), seed * 3 + 3), {T, c.n_head * c.head_dim}, own_);
      StepLayout layout;
      layout.positions = st.pos;
      layout.seq_starts = st.seq_starts;
      layout.block_table = st.block_table;
      layout.max_blocks = st.max_blocks;
      layout.block_size = c.block_size;
      be_->paged_attention(tq, kp, vp, layout, c.window, scale, to);
      const float err = max_abs_diff(download_f32(*be_, to).data(), want.data(), want.size());
      EXPECT_LE(err, kAttnTol);
      if (err > worst) {
        worst = err;
        worst_case = std::string(c.name) + " " + dtype_name(dt);
      }
      own_.clear();
    }
  }
  std::printf("PAGED-VULKAN %s: worst error vs ref %.3g (%s), tolerance %.1g\n", variant().name,
              worst, worst_case.c_str(), kAttnTol);
}

TEST_P(VulkanPagedOps, PagedAttentionEqualsContiguousAttentionOfGatheredKv) {
  SHARDLM_REQUIRE_VULKAN(be_);
  // One sequence: paged over a shuffled table == VulkanBackend::attention over the same keys
  // gathered into rows (f32 pools, so the two read identical values).
  const PagedCase c{"gathered", 8, 2, 32, 16, 0, {{90, 6}}};
  const PagedStep st = make_step(c, 301, false);
  const int64_t n_slots = st.n_blocks * c.block_size, T = st.n_tokens, n_pos = 96;
  const auto kf = random_floats(static_cast<size_t>(n_slots * c.n_head_kv * c.head_dim), 302);
  const auto vf = random_floats(kf.size(), 303);
  const auto q = random_floats(static_cast<size_t>(T * c.n_head * c.head_dim), 304);
  const PagedKvView kv{kf.data(), vf.data(), DType::kF32, c.block_size, c.n_head_kv, c.head_dim};
  std::vector<float> kg(static_cast<size_t>(n_pos * c.n_head_kv * c.head_dim)), vg(kg.size());
  ref::gather_kv(kv, st.block_table.data(), n_pos, kg.data(), vg.data());
  const float scale = 0.17f;
  const Tensor tq = upload_f32(*be_, q, {T, c.n_head, c.head_dim}, own_);
  const Tensor kp = upload_f32(*be_, kf, {n_slots, c.n_head_kv, c.head_dim}, own_);
  const Tensor vp = upload_f32(*be_, vf, {n_slots, c.n_head_kv, c.head_dim}, own_);
  const Tensor kc = upload_f32(*be_, kg, {n_pos, c.n_head_kv, c.head_dim}, own_);
  const Tensor vc = upload_f32(*be_, vg, {n_pos, c.n_head_kv, c.head_dim}, own_);
  const Tensor o1 =
      upload_f32(*be_, random_floats(q.size(), 305), {T, c.n_head * c.head_dim}, own_);
  const Tensor o2 =
      upload_f32(*be_, random_floats(q.size(), 306), {T, c.n_head * c.head_dim}, own_);
  StepLayout layout;
  layout.positions = st.pos;
  layout.seq_starts = st.seq_starts;
  layout.block_table = st.block_table;
  layout.max_blocks = st.max_blocks;
  layout.block_size = c.block_size;
  be_->paged_attention(tq, kp, vp, layout, 0, scale, o1);
  be_->attention(tq, kc, vc, st.pos, 0, scale, o2);
  const auto a = download_f32(*be_, o1), b = download_f32(*be_, o2);
  EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), kAttnTol);
}

TEST_P(VulkanPagedOps, DecodeStepsReplayWhileBlockTablesGrow) {
  SHARDLM_REQUIRE_VULKAN(be_);
  // Two sequences decoding 24 steps with block_size 4 (their tables grow from 3 to 9 blocks):
  // store_kv + paged_attention per step, each step read back. After the first step nothing is
  // re-recorded (when reuse is on), and every step matches ref.
  const int64_t n_head = 4, n_head_kv = 2, hd = 16, bs = 4, n_blocks = 40, steps = 24;
  const int64_t n_slots = n_blocks * bs, row = n_head_kv * hd;
  const DType dt = DType::kBF16;
  const int64_t past[2] = {9, 2};
  std::vector<int32_t> ids(static_cast<size_t>(n_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(401));
  const auto k0 = encode(random_floats(static_cast<size_t>(n_slots * row), 402), dt);
  const auto v0 = encode(random_floats(k0.size() / 2, 403), dt);
  std::vector<uint8_t> k_host = k0, v_host = v0;
  const Tensor kp = upload(*be_, k0, dt, {n_slots, n_head_kv, hd}, own_);
  const Tensor vp = upload(*be_, v0, dt, {n_slots, n_head_kv, hd}, own_);
  own_.emplace_back();
  const Tensor tk =
      be_->allocate_tensor(DType::kF32, {2, n_head_kv, hd}, MemoryKind::kScratch, own_.back());
  own_.emplace_back();
  const Tensor tv =
      be_->allocate_tensor(DType::kF32, {2, n_head_kv, hd}, MemoryKind::kScratch, own_.back());
  own_.emplace_back();
  const Tensor tq =
      be_->allocate_tensor(DType::kF32, {2, n_head, hd}, MemoryKind::kScratch, own_.back());
  own_.emplace_back();
  const Tensor to =
      be_->allocate_tensor(DType::kF32, {2, n_head * hd}, MemoryKind::kScratch, own_.back());
  uint64_t later_recorded = 0, later_replayed = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t max_blocks = (past[0] + step) / bs + 1;  // sequence 0 is the longer one
    std::vector<int32_t> pos, table(static_cast<size_t>(2 * max_blocks), -1);
    std::vector<int64_t> slots;
    for (int s = 0; s < 2; ++s) {
      const int64_t p = past[s] + step;
      pos.push_back(static_cast<int32_t>(p));
      for (int64_t i = 0; i <= p / bs; ++i) {
        table[static_cast<size_t>(s * max_blocks + i)] = ids[static_cast<size_t>(s * 20 + i)];
      }
      slots.push_back(int64_t{ids[static_cast<size_t>(s * 20 + p / bs)]} * bs + p % bs);
    }
    const std::vector<int32_t> starts = {0, 1, 2};
    const auto k = random_floats(static_cast<size_t>(2 * row), 410 + static_cast<uint64_t>(step));
    const auto v = random_floats(k.size(), 450 + static_cast<uint64_t>(step));
    const auto q = random_floats(static_cast<size_t>(2 * n_head * hd), 490 + step);
    ref::store_kv(k.data(), v.data(), slots.data(), 2, n_head_kv, hd, dt, k_host.data(),
                  v_host.data());
    const PagedKvView kv{k_host.data(), v_host.data(), dt, bs, n_head_kv, hd};
    const StepLayoutView lv{pos.data(), 2, starts.data(), 2, table.data(), max_blocks};
    std::vector<float> want(q.size());
    ref::paged_attention(q.data(), n_head, kv, lv, 0, 0.25f, false, want.data());

    be_->copy_from_host(tk, k.data(), k.size() * sizeof(float));
    be_->copy_from_host(tv, v.data(), v.size() * sizeof(float));
    be_->copy_from_host(tq, q.data(), q.size() * sizeof(float));
    be_->synchronize();
    be_->reset_stream_stats();
    be_->store_kv(tk, tv, slots, kp, vp);
    StepLayout layout;
    layout.positions = pos;
    layout.seq_starts = starts;
    layout.block_table = table;
    layout.max_blocks = max_blocks;
    layout.block_size = bs;
    be_->paged_attention(tq, kp, vp, layout, 0, 0.25f, to);
    const auto got = download_f32(*be_, to);
    // Steps 0 and 1 may record (a fresh backend's parameter arena settles on its size during
    // the first steps); from then on every decode step must replay.
    if (step > 1) {
      later_recorded += be_->stream_stats().recorded;
      later_replayed += be_->stream_stats().replayed;
    }
    ASSERT_LE(max_abs_diff(got.data(), want.data(), want.size()), kAttnTol) << "step " << step;
  }
  if (variant().reuse) {
    EXPECT_EQ(later_recorded, 0u) << "decode steps re-recorded as block tables grew";
    EXPECT_EQ(later_replayed, static_cast<uint64_t>(steps - 2));
  }
}

TEST_P(VulkanPagedOps, LargeBlockTablesTravelOutsideTheArena) {
  SHARDLM_REQUIRE_VULKAN(be_);
  // 300 sequences x 1200 block-table columns (1.4 MB) do not fit the 4 MB arena's quarter.
  const int64_t n_seq = 300, max_blocks = 1200, bs = 2, n_head = 2, hd = 8;
  std::vector<int32_t> table(static_cast<size_t>(n_seq * max_blocks), -1), pos, starts = {0};
  std::mt19937 rng(501);
  const int64_t n_blocks = 64;
  std::uniform_int_distribution<int32_t> block(0, static_cast<int32_t>(n_blocks - 1));
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t p = (s * 37) % 23;
    for (int64_t i = 0; i <= p / bs; ++i)
      table[static_cast<size_t>(s * max_blocks + i)] = block(rng);
    pos.push_back(static_cast<int32_t>(p));
    starts.push_back(static_cast<int32_t>(pos.size()));
  }
  const int64_t n_slots = n_blocks * bs, T = n_seq;
  const auto kf = random_floats(static_cast<size_t>(n_slots * hd), 502);
  const auto vf = random_floats(kf.size(), 503);
  const auto q = random_floats(static_cast<size_t>(T * n_head * hd), 504);
  const PagedKvView kv{kf.data(), vf.data(), DType::kF32, bs, 1, hd};
  const StepLayoutView lv{pos.data(), T, starts.data(), n_seq, table.data(), max_blocks};
  std::vector<float> want(q.size());
  ref::paged_attention(q.data(), n_head, kv, lv, 0, 0.3f, false, want.data());
  const Tensor tq = upload_f32(*be_, q, {T, n_head, hd}, own_);
  const Tensor kp = upload_f32(*be_, kf, {n_slots, 1, hd}, own_);
  const Tensor vp = upload_f32(*be_, vf, {n_slots, 1, hd}, own_);
  const Tensor to = upload_f32(*be_, random_floats(q.size(), 505), {T, n_head * hd}, own_);
  StepLayout layout;
  layout.positions = pos;
  layout.seq_starts = starts;
  layout.block_table = table;
  layout.max_blocks = max_blocks;
  layout.block_size = bs;
  for (int rep = 0; rep < 2; ++rep) {  // the second call reuses (and rewrites) the buffer
    be_->paged_attention(tq, kp, vp, layout, 0, 0.3f, to);
    EXPECT_LE(max_abs_diff(download_f32(*be_, to).data(), want.data(), want.size()), kAttnTol);
  }
}

// Runs `fn`, expecting Error(code) whose message contains every one of `parts`.
template <class F>
void expect_error(F&& fn, StatusCode code, std::initializer_list<const char*> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const char* p : parts) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
}

TEST_P(VulkanPagedOps, MalformedInputsAreClearErrors) {
  SHARDLM_REQUIRE_VULKAN(be_);
  const int64_t bs = 4, n_slots = 16, hd = 8;
  const Tensor kp = upload(*be_, encode(random_floats(n_slots * hd, 601), DType::kBF16),
                           DType::kBF16, {n_slots, 1, hd}, own_);
  const Tensor vp = upload(*be_, encode(random_floats(n_slots * hd, 602), DType::kBF16),
                           DType::kBF16, {n_slots, 1, hd}, own_);
  const Tensor vp16 = upload(*be_, encode(random_floats(n_slots * hd, 603), DType::kF16),
                             DType::kF16, {n_slots, 1, hd}, own_);
  const Tensor tk = upload_f32(*be_, random_floats(2 * hd, 604), {2, 1, hd}, own_);
  const Tensor tq = upload_f32(*be_, random_floats(2 * 2 * hd, 605), {2, 2, hd}, own_);
  const Tensor to = upload_f32(*be_, random_floats(2 * 2 * hd, 606), {2, 2 * hd}, own_);

  const std::vector<int64_t> bad_slots = {3, n_slots};
  expect_error([&] { be_->store_kv(tk, tk, bad_slots, kp, vp); }, StatusCode::kInternal,
               {"vulkan store_kv", "slot 16 outside the pool of 16"});
  const std::vector<int64_t> slots = {3, -1};
  expect_error([&] { be_->store_kv(tk, tk, slots, kp, vp16); }, StatusCode::kInternal,
               {"vulkan store_kv", "k_pool", "v_pool"});

  std::vector<int32_t> pos = {5, 2}, starts = {0, 1, 2}, table = {1, 3, 0, -1};
  StepLayout layout;
  layout.positions = pos;
  layout.seq_starts = starts;
  layout.block_table = table;
  layout.max_blocks = 2;
  layout.block_size = bs;
  be_->paged_attention(tq, kp, vp, layout, 0, 0.3f, to);  // valid
  table = {1, 7, 0, -1};                                  // block 7 of a 4-block pool
  expect_error([&] { be_->paged_attention(tq, kp, vp, layout, 0, 0.3f, to); },
               StatusCode::kInternal, {"vulkan paged_attention", "block 1 is 7"});
  table = {1, -1, 0, -1};  // position 5 unmapped
  expect_error([&] { be_->paged_attention(tq, kp, vp, layout, 0, 0.3f, to); },
               StatusCode::kInternal, {"vulkan paged_attention", "is -1"});
  table = {1, 3, 0, -1};
  pos = {8, 2};  // beyond max_blocks * block_size
  expect_error([&] { be_->paged_attention(tq, kp, vp, layout, 0, 0.3f, to); },
               StatusCode::kInternal, {"vulkan paged_attention", "position 8"});
  pos = {5, 2};
  starts = {0, 2, 1};
  expect_error([&] { be_->paged_attention(tq, kp, vp, layout, 0, 0.3f, to); },
               StatusCode::kInternal, {"vulkan paged_attention", "seq_starts"});
  starts = {0, 1, 2};
  expect_error([&] { be_->paged_attention(tq, kp, vp16, layout, 0, 0.3f, to); },
               StatusCode::kInternal, {"vulkan paged_attention", "v_pool"});
  layout.max_blocks = 3;  // table too short for 2 x 3
  expect_error([&] { be_->paged_attention(tq, kp, vp, layout, 0, 0.3f, to); },
               StatusCode::kInternal, {"vulkan paged_attention", "block table"});
}

INSTANTIATE_TEST_SUITE_P(Paths, VulkanPagedOps,
                         ::testing::Range(0, static_cast<int>(kVariants.size())),
                         [](const auto& info) {
                           return std::string(kVariants[static_cast<size_t>(info.param)].name);
                         });

// ---- A real model's paged decode steps replay recorded command buffers ----

TEST(VulkanPagedReplay, TransformerDecodeStepsReplayAsBlockTablesGrow) {
  {
    auto probe = test::make_test_backend();
    SHARDLM_REQUIRE_VULKAN(probe);
  }
  const fs::path fixture =
      fs::path(SHARDLM_FIXTURES_DIR) / "hf" / "qwen3_qknorm_headdim32_tied_bf16";
  test::TempDir tmp("vk-paged-replay");
  PackOptions po;
  po.model_dir = fixture.string();
  po.out_dir = (tmp.path() / "pack").string();
  po.tp_size = 1;
  pack_checkpoint(po);
  const PackSet set = find_pack_set(po.out_dir, 1);
  // Two sequences (6 and 3 prompt tokens) prefilled in one step, then 14 decode steps of both
  // with block_size 4: their block tables grow from 2 to 5 blocks.
  const int64_t bs = 4, decode_steps = 14;
  const std::vector<std::vector<int32_t>> tables = {{7, 2, 11, 0, 5}, {9, 4, 1, 12, 3}};
  auto run = [&](bool reuse, uint64_t* later_recorded, uint64_t* later_replayed) {
    VulkanOptions o;
    o.reuse_command_buffers = reuse;
    auto be = test::make_test_backend(o);
    auto pack = PackReader::open(set.rank_paths[0]);
    auto host = make_single_communicator();
    auto comm = be->make_communicator(*host);
    std::vector<std::vector<float>> logits;
    {
      Transformer model(*pack, *be, *comm, 16);
      KvPool pool(*be, model.kv_pool_shape(16, bs, DType::kBF16));
      int64_t len[2] = {6, 3};
      std::vector<float> host(static_cast<size_t>(2 * model.layout().n_vocab_local));
      for (int64_t step = 0; step <= decode_steps; ++step) {
        StepInput in;
        int64_t max_blocks = 1;
        for (int s = 0; s < 2; ++s) max_blocks = std::max(max_blocks, (len[s] + bs - 1) / bs);
        in.max_blocks = static_cast<int32_t>(max_blocks);
        in.seq_starts.push_back(0);
        for (int s = 0; s < 2; ++s) {
          const int64_t first = step == 0 ? 0 : len[s] - 1;
          for (int64_t p = first; p < len[s]; ++p) {
            in.tokens.push_back(static_cast<int32_t>((17 * p + 5 * s + 3) % 200));
            in.positions.push_back(static_cast<int32_t>(p));
            in.slot_mapping.push_back(int64_t{tables[s][static_cast<size_t>(p / bs)]} * bs +
                                      p % bs);
          }
          in.seq_starts.push_back(static_cast<int32_t>(in.tokens.size()));
          in.context_lens.push_back(static_cast<int32_t>(len[s]));
          for (int64_t i = 0; i < max_blocks; ++i) {
            in.block_table.push_back(i * bs < len[s] ? tables[s][static_cast<size_t>(i)] : -1);
          }
          in.logits_rows.push_back(in.seq_starts.back() - 1);
        }
        be->synchronize();
        be->reset_stream_stats();
        const Tensor out = model.step(in, pool);
        be->copy_to_host(host.data(), out, host.size() * sizeof(float));
        logits.push_back(host);
        if (step >= 2) {  // step 1 is the first decode step: it records
          *later_recorded += be->stream_stats().recorded;
          *later_replayed += be->stream_stats().replayed;
        }
        for (int s = 0; s < 2; ++s) ++len[s];
      }
    }
    return logits;
  };
  uint64_t rec_on = 0, rep_on = 0, rec_off = 0, rep_off = 0;
  const auto on = run(true, &rec_on, &rep_on);
  const auto off = run(false, &rec_off, &rep_off);
  EXPECT_EQ(rec_on, 0u) << "paged decode steps re-recorded as block tables grew";
  EXPECT_GE(rep_on, static_cast<uint64_t>(decode_steps - 1));
  EXPECT_EQ(rep_off, 0u);
  ASSERT_EQ(on.size(), off.size());
  for (size_t i = 0; i < on.size(); ++i) EXPECT_EQ(on[i], off[i]) << "step " << i;
  std::printf("VULKAN paged replay: %lld later decode steps, %llu recorded, %llu replayed\n",
              static_cast<long long>(decode_steps - 1), static_cast<unsigned long long>(rec_on),
              static_cast<unsigned long long>(rep_on));
}

// ---- The step engine on the Vulkan backend vs on the CPU backend ----

constexpr float kVsCpuTol = 2e-5f;      // parity_test.cpp: of the reference logit range
constexpr float kBf16KvRelTol = 1e-2f;  // tests/batching/step_engine_test.cpp, bf16 KV

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logits;
};

std::vector<Outcome> run_batched(Engine& engine, const std::vector<TokenRequest>& reqs) {
  StepEngine se(engine, StepEngineOptions{});
  std::vector<RequestId> ids;
  for (const TokenRequest& r : reqs) ids.push_back(se.submit(r));
  se.run_to_completion();
  std::vector<Outcome> out;
  for (RequestId id : ids) {
    TokenResult r = se.take_result(id);
    out.push_back({r.tokens, r.logits});
  }
  EXPECT_EQ(se.block_manager().n_used(), 0);
  return out;
}

class VulkanStepEngine : public ::testing::TestWithParam<std::string> {};

TEST_P(VulkanStepEngine, BatchedRequestsMatchCpuStepEngineAtTp1And2) {
  {
    auto probe = test::make_test_backend();
    SHARDLM_REQUIRE_VULKAN(probe);
  }
  const fs::path dir = fs::path(SHARDLM_FIXTURES_DIR) / "hf" / GetParam();
  ASSERT_TRUE(fs::exists(dir / "reference.json")) << dir;
  const test::HfReference ref = test::load_hf_reference(dir);
  // Four prompts (5, 23, 40, 12 tokens) from the fixture's prompt and seeded ids; 16 batch
  // tokens per step, so prompts are prefilled in chunks mixed with other requests' decodes.
  std::vector<TokenRequest> reqs;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(ref.n_vocab - 1));
  for (size_t len : {5u, 23u, 40u, 12u}) {
    TokenRequest r;
    r.prompt = ref.prompt;
    r.prompt.resize(std::min(r.prompt.size(), len));
    while (r.prompt.size() < len) r.prompt.push_back(id(rng));
    r.sampling.temperature = 0;
    r.max_new_tokens = 10;
    r.logits = true;
    reqs.push_back(r);
  }
  test::TempDir tmp("vk-step-" + GetParam());
  int tested = 0;
  for (int tp : {1, 2}) {
    PackOptions po;
    po.model_dir = dir.string();
    po.out_dir = (tmp.path() / ("tp" + std::to_string(tp))).string();
    po.tp_size = tp;
    try {
      pack_checkpoint(po);
    } catch (const Error& e) {
      if (e.code() == StatusCode::kInvalidArg) continue;  // heads / n_ff do not divide
      throw;
    }
    for (DType kv : {DType::kF32, DType::kBF16}) {
      const int64_t block_size = tp == 1 ? 16 : 5;
      SCOPED_TRACE("tp " + std::to_string(tp) + " kv " + dtype_name(kv) + " block_size " +
                   std::to_string(block_size));
      auto engine_for = [&](const char* backend) {
        EngineOptions eo;
        eo.pack_dir = po.out_dir;
        eo.backend = backend;
        eo.n_threads = 2;
        eo.n_ctx = 128;
        eo.max_batch_tokens = 16;
        eo.default_sequence = false;
        eo.kv_blocks = 64;
        eo.block_size = block_size;
        eo.kv_dtype = kv;
        return std::make_unique<Engine>(eo);
      };
      std::vector<Outcome> cpu, vk;
      {
        auto e = engine_for("cpu");
        cpu = run_batched(*e, reqs);
      }
      {
        auto e = engine_for("vulkan");
        vk = run_batched(*e, reqs);
      }
      // f32 KV: the Vulkan parity tolerance. bf16 KV: K/V computed a few f32 ulps apart on the
      // two backends may round to neighbouring bf16 values, as in step_engine_test.cpp.
      const float tol = (kv == DType::kF32 ? kVsCpuTol : kBf16KvRelTol) * ref.logit_range;
      float worst = 0;
      for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(vk[i].tokens, cpu[i].tokens) << "request " << i;
        EXPECT_EQ(vk[i].tokens.size(), 10u) << "request " << i;
        ASSERT_EQ(vk[i].logits.size(), cpu[i].logits.size()) << "request " << i;
        const float err =
            max_abs_diff(vk[i].logits.data(), cpu[i].logits.data(), cpu[i].logits.size());
        EXPECT_LE(err, tol) << "request " << i;
        worst = std::max(worst, err);
      }
      std::printf(
          "STEP-VULKAN %-34s tp %d kv %-4s block %2lld: tokens %s, logits vs cpu %.3g "
          "(%.1e of range)\n",
          GetParam().c_str(), tp, dtype_name(kv), static_cast<long long>(block_size),
          [&] {
            for (size_t i = 0; i < reqs.size(); ++i) {
              if (vk[i].tokens != cpu[i].tokens) return "MISMATCH";
            }
            return "match";
          }(),
          worst, worst / ref.logit_range);
    }
    ++tested;
  }
  EXPECT_EQ(tested, 2) << "both tp 1 and tp 2 should pack";
}

// A sliding-window GQA model (f32 weights) and a q/k-norm GQA one (bf16), both split at TP 2.
INSTANTIATE_TEST_SUITE_P(Fixtures, VulkanStepEngine,
                         ::testing::Values("mistral_sliding_window6_f32",
                                           "qwen3_qknorm_headdim32_tied_bf16"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace shardlm
