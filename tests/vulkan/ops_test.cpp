// Every Vulkan op against its kernels/ref twin on random inputs (never zeros), for every weight
// dtype, on shapes that are not multiples of the workgroup sizes, and for each code path:
// subgroup or shared-memory reductions, 16-bit-storage or 32-bit-word weight loads, mapped or
// staged device memory, command-buffer replay on or off, and single-pass or split-K attention
// (the backend's options force the fallbacks on a device -- lavapipe -- that has every
// feature).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "kernels/ref/ref_ops.h"
#include "runtime/core/status.h"
#include "tests/runtime/test_util.h"
#include "tests/vulkan/vk_test_util.h"

namespace shardlm {
namespace {

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

// Absolute tolerance per accumulated product, by weight dtype: the shaders widen f16/bf16
// exactly and accumulate in f32, so all dtypes differ from the double oracle by f32 rounding.
float per_term_tol(DType d) {
  switch (d) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
      return 2e-7f;
  }
  return 0;
}

constexpr DType kDtypes[] = {DType::kF32, DType::kF16, DType::kBF16};

class VulkanOps : public ::testing::TestWithParam<int> {
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
  VulkanBackend* be_ = nullptr;
  std::vector<std::unique_ptr<DeviceBuffer>> own_;  // destroyed before the shared backend

 private:
  static std::array<std::unique_ptr<VulkanBackend>, kVariants.size()> backends_;
};
std::array<std::unique_ptr<VulkanBackend>, kVariants.size()> VulkanOps::backends_;

TEST_P(VulkanOps, VariantUsesRequestedPaths) {
  SHARDLM_REQUIRE_VULKAN(be_);
  const Variant& v = kVariants[static_cast<size_t>(GetParam())];
  EXPECT_EQ(be_->uses_subgroup_ops(), v.subgroup && be_->device_info().subgroup_arithmetic);
  EXPECT_EQ(be_->uses_16bit_storage(), v.s16 && be_->device_info().storage_16bit);
  std::printf("VULKAN device %s: subgroup ops %s, 16-bit storage %s, host-visible %s\n",
              be_->device_info().name.c_str(), be_->uses_subgroup_ops() ? "on" : "off",
              be_->uses_16bit_storage() ? "on" : "off", v.host_visible ? "allowed" : "off");
}

TEST_P(VulkanOps, EmbedMatchesRefWithOutOfShardIds) {
  SHARDLM_REQUIRE_VULKAN(be_);
  for (DType dt : kDtypes) {
    const int64_t n_vocab_local = 37, n_embd = 21, vocab_start = 5;
    const auto table_f = random_floats(static_cast<size_t>(n_vocab_local * n_embd), 11);
    const auto table_b = encode(table_f, dt);
    const std::vector<int32_t> ids = {5, 0, 41, 42, 17, 4, 100, 23};
    const int64_t n = static_cast<int64_t>(ids.size());
    std::vector<float> want(static_cast<size_t>(n * n_embd));
    ref::embed(ids.data(), n, table_b.data(), dt, n_vocab_local, vocab_start, n_embd, want.data());
    const Tensor table = upload(*be_, table_b, dt, {n_vocab_local, n_embd}, own_);
    const Tensor out = upload_f32(*be_, random_floats(want.size(), 12), {n, n_embd}, own_);
    be_->embed(ids, table, vocab_start, out);
    EXPECT_EQ(download_f32(*be_, out), want) << dtype_name(dt);
  }
}

TEST_P(VulkanOps, RmsNormMatchesRefInAndOutOfPlace) {
  SHARDLM_REQUIRE_VULKAN(be_);
  for (int64_t n : {64, 300, 7}) {
    const int64_t rows = 3;
    const auto x = random_floats(static_cast<size_t>(rows * n), 21, 4.0f);
    const auto w = random_floats(static_cast<size_t>(n), 22);
    std::vector<float> want(x.size());
    ref::rms_norm(x.data(), w.data(), rows, n, 1e-6f, want.data());
    const Tensor tx = upload_f32(*be_, x, {rows, n}, own_);
    const Tensor tw = upload_f32(*be_, w, {n}, own_);
    const Tensor to = upload_f32(*be_, random_floats(x.size(), 23), {rows, n}, own_);
    be_->rms_norm(tx, tw, 1e-6f, to);
    EXPECT_LE(max_abs_diff(download_f32(*be_, to).data(), want.data(), want.size()), 2e-6f) << n;
    be_->rms_norm(tx, tw, 1e-6f, tx);  // in place (Qwen3 q/k norm)
    EXPECT_LE(max_abs_diff(download_f32(*be_, tx).data(), want.data(), want.size()), 2e-6f) << n;
  }
}

TEST_P(VulkanOps, MatmulMatchesRefGemvAndTiled) {
  SHARDLM_REQUIRE_VULKAN(be_);
  // 1 token runs gemv, 2..8 gemv8, more gemm_tiled; n_in 64/256 load 8 weights at a time,
  // 36 four, 30 one (the scalar path).
  for (DType dt : kDtypes) {
    for (int64_t n_tokens : {1, 3, 8, 9, 70}) {
      for (auto [n_in, n_out] :
           {std::pair<int64_t, int64_t>{64, 33}, {30, 17}, {36, 70}, {256, 130}}) {
        const auto x = random_floats(static_cast<size_t>(n_tokens * n_in), 31);
        const auto w = encode(random_floats(static_cast<size_t>(n_out * n_in), 32), dt);
        const auto bias = random_floats(static_cast<size_t>(n_out), 33);
        const Tensor tx = upload_f32(*be_, x, {n_tokens, n_in}, own_);
        const Tensor tw = upload(*be_, w, dt, {n_out, n_in}, own_);
        const Tensor tb = upload_f32(*be_, bias, {n_out}, own_);
        for (bool with_bias : {false, true}) {
          std::vector<float> want(static_cast<size_t>(n_tokens * n_out));
          ref::matmul(x.data(), n_tokens, n_in, w.data(), dt, n_out,
                      with_bias ? bias.data() : nullptr, want.data());
          const Tensor ty =
              upload_f32(*be_, random_floats(want.size(), 34), {n_tokens, n_out}, own_);
          be_->matmul(tx, tw, with_bias ? tb : Tensor{}, ty);
          EXPECT_LE(max_abs_diff(download_f32(*be_, ty).data(), want.data(), want.size()),
                    per_term_tol(dt) * static_cast<float>(n_in))
              << dtype_name(dt) << " n_tokens " << n_tokens << " n_in " << n_in << " bias "
              << with_bias;
        }
        own_.clear();
      }
    }
  }
}

TEST_P(VulkanOps, RopeMatchesRefAtLargePositions) {
  SHARDLM_REQUIRE_VULKAN(be_);
  for (int64_t head_dim : {16, 128}) {
    for (double theta : {10000.0, 1000000.0}) {
      const std::vector<int32_t> pos = {0, 1, 17, 511, 4095, 32767};
      const int64_t n = static_cast<int64_t>(pos.size()), n_head = 3, half = head_dim / 2;
      std::vector<float> inv(static_cast<size_t>(half));
      for (int64_t i = 0; i < half; ++i) {
        inv[static_cast<size_t>(i)] = static_cast<float>(
            1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim)));
      }
      const auto x = random_floats(static_cast<size_t>(n * n_head * head_dim), 41);
      std::vector<float> want = x;
      ref::rope(want.data(), n, n_head, head_dim, pos.data(), inv.data());
      const Tensor tx = upload_f32(*be_, x, {n, n_head, head_dim}, own_);
      const Tensor ti = upload_f32(*be_, inv, {half}, own_);
      be_->rope(tx, pos, ti);
      EXPECT_LE(max_abs_diff(download_f32(*be_, tx).data(), want.data(), want.size()), 2e-6f)
          << "head_dim " << head_dim << " theta " << theta;
    }
  }
}

struct AttnCase {
  int64_t n_kv, n_tokens, first_pos, n_head, n_head_kv, head_dim, window;
};

TEST_P(VulkanOps, AttentionMatchesRefPrefillDecodeWindowGqa) {
  SHARDLM_REQUIRE_VULKAN(be_);
  const AttnCase cases[] = {
      {7, 7, 0, 4, 4, 16, 0},       // prefill from empty
      {300, 1, 299, 8, 2, 48, 0},   // decode over 3 key blocks, GQA 4:1
      {105, 5, 100, 8, 1, 32, 0},   // chunk after a cached prefix, MQA
      {40, 40, 0, 4, 2, 24, 6},     // sliding window 6
      {260, 2, 258, 2, 2, 256, 0},  // head_dim 256: two dims per invocation
      {130, 3, 127, 4, 2, 128, 100},
  };
  for (const AttnCase& c : cases) {
    std::vector<int32_t> pos(static_cast<size_t>(c.n_tokens));
    for (int64_t t = 0; t < c.n_tokens; ++t)
      pos[static_cast<size_t>(t)] = static_cast<int32_t>(c.first_pos + t);
    const auto q = random_floats(static_cast<size_t>(c.n_tokens * c.n_head * c.head_dim), 51);
    const auto k = random_floats(static_cast<size_t>(c.n_kv * c.n_head_kv * c.head_dim), 52);
    const auto v = random_floats(static_cast<size_t>(c.n_kv * c.n_head_kv * c.head_dim), 53);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    std::vector<float> want(q.size());
    ref::attention(q.data(), k.data(), v.data(), pos.data(), c.n_tokens, c.n_kv, c.n_head,
                   c.n_head_kv, c.head_dim, c.window, scale, want.data());
    const Tensor tq = upload_f32(*be_, q, {c.n_tokens, c.n_head, c.head_dim}, own_);
    const Tensor tk = upload_f32(*be_, k, {c.n_kv, c.n_head_kv, c.head_dim}, own_);
    const Tensor tv = upload_f32(*be_, v, {c.n_kv, c.n_head_kv, c.head_dim}, own_);
    const Tensor to =
        upload_f32(*be_, random_floats(q.size(), 54), {c.n_tokens, c.n_head * c.head_dim}, own_);
    be_->attention(tq, tk, tv, pos, c.window, scale, to);
    EXPECT_LE(max_abs_diff(download_f32(*be_, to).data(), want.data(), want.size()), 2e-6f)
        << "n_kv " << c.n_kv << " n_tokens " << c.n_tokens << " head_dim " << c.head_dim
        << " window " << c.window;
  }
}

TEST_P(VulkanOps, SwigluAddCopyColumnsMatchRef) {
  SHARDLM_REQUIRE_VULKAN(be_);
  const int64_t n = 5, n_ff = 77;
  const auto gu = random_floats(static_cast<size_t>(n * 2 * n_ff), 61, 6.0f);
  std::vector<float> want(static_cast<size_t>(n * n_ff));
  ref::swiglu(gu.data(), n, n_ff, want.data());
  const Tensor tgu = upload_f32(*be_, gu, {n, 2 * n_ff}, own_);
  const Tensor tout = upload_f32(*be_, random_floats(want.size(), 62), {n, n_ff}, own_);
  be_->swiglu(tgu, tout);
  EXPECT_LE(max_abs_diff(download_f32(*be_, tout).data(), want.data(), want.size()), 1e-5f);

  const auto y = random_floats(1000, 63), x = random_floats(1000, 64);
  std::vector<float> sum = y;
  ref::add(sum.data(), x.data(), 1000);
  const Tensor ty = upload_f32(*be_, y, {1000}, own_), tx = upload_f32(*be_, x, {1000}, own_);
  be_->add(ty, tx);
  EXPECT_EQ(download_f32(*be_, ty), sum);

  // QKV split into a slice of a larger cache-like tensor (rows 3..5 of 8).
  const int64_t rows = 3, src_cols = 40, col_begin = 24, n_cols = 8;
  const auto src = random_floats(static_cast<size_t>(rows * src_cols), 65);
  std::vector<float> cols(static_cast<size_t>(rows * n_cols));
  ref::copy_columns(src.data(), rows, src_cols, col_begin, n_cols, cols.data());
  const auto cache0 = random_floats(8 * n_cols, 66);
  std::vector<float> cache_want = cache0;
  std::copy(cols.begin(), cols.end(), cache_want.begin() + 3 * n_cols);
  const Tensor tsrc = upload_f32(*be_, src, {rows, src_cols}, own_);
  const Tensor tcache = upload_f32(*be_, cache0, {8, 2, 4}, own_);
  be_->copy_columns(tsrc, col_begin, tcache.slice_rows(3, rows));
  EXPECT_EQ(download_f32(*be_, tcache), cache_want);
}

TEST_P(VulkanOps, ArgmaxMatchesRefIncludingTies) {
  SHARDLM_REQUIRE_VULKAN(be_);
  for (int64_t n : {1, 7, 1000, 151936}) {
    auto x = random_floats(static_cast<size_t>(n), 71 + static_cast<uint64_t>(n));
    const Tensor tx = upload_f32(*be_, x, {n}, own_);
    const Backend::MaxElement got = be_->max_element(tx);
    EXPECT_EQ(got.index, ref::argmax(x.data(), n)) << n;
    EXPECT_EQ(got.value, x[static_cast<size_t>(ref::argmax(x.data(), n))]);
  }
  std::vector<float> ties = random_floats(600, 72, 0.5f);
  ties[17] = ties[300] = ties[599] = 2.0f;  // the first of equal maxima wins
  const Tensor tt = upload_f32(*be_, ties, {600}, own_);
  EXPECT_EQ(be_->max_element(tt).index, 17);
}

TEST_P(VulkanOps, UploadsStayOrderedWithQueuedOps) {
  SHARDLM_REQUIRE_VULKAN(be_);
  // add; overwrite x from the host; add again: the second add must see the new x.
  for (int64_t n : {256, 400000}) {  // through the arena, and through staging / a flush
    const auto y0 = random_floats(static_cast<size_t>(n), 81);
    const auto x0 = random_floats(static_cast<size_t>(n), 82);
    const auto x1 = random_floats(static_cast<size_t>(n), 83);
    const Tensor ty = upload_f32(*be_, y0, {n}, own_), tx = upload_f32(*be_, x0, {n}, own_);
    be_->add(ty, tx);
    be_->copy_from_host(tx, x1.data(), x1.size() * sizeof(float));
    be_->add(ty, tx);
    std::vector<float> want = y0;
    ref::add(want.data(), x0.data(), n);
    ref::add(want.data(), x1.data(), n);
    EXPECT_EQ(download_f32(*be_, ty), want) << n;
  }
}

TEST_P(VulkanOps, ScratchIsZeroedEvenWhenOpsAreQueued) {
  SHARDLM_REQUIRE_VULKAN(be_);
  const Tensor ty = upload_f32(*be_, random_floats(64, 91), {64}, own_);
  const Tensor tx = upload_f32(*be_, random_floats(64, 92), {64}, own_);
  be_->add(ty, tx);  // queued
  own_.emplace_back();
  const Tensor z = be_->allocate_tensor(DType::kF32, {1000}, MemoryKind::kScratch, own_.back());
  EXPECT_EQ(download_f32(*be_, z), std::vector<float>(1000, 0.0f));
}

TEST_P(VulkanOps, ForeignPointerIsAClearError) {
  SHARDLM_REQUIRE_VULKAN(be_);
  std::vector<float> host(64, 1.0f);
  const Tensor th(host.data(), DType::kF32, {64});
  const Tensor td = upload_f32(*be_, host, {64}, own_);
  try {
    be_->add(td, th);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("not in this vulkan backend's memory"), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, VulkanOps, ::testing::Range(0, static_cast<int>(kVariants.size())),
                         [](const auto& info) {
                           return std::string(kVariants[static_cast<size_t>(info.param)].name);
                         });

}  // namespace
}  // namespace shardlm
