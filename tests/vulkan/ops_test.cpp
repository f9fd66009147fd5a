// What the Vulkan backend promises beyond op results, on each code path (subgroup or
// shared-memory reductions, 16-bit-storage or 32-bit-word weight loads, mapped or staged device
// memory, command-buffer replay on or off, single-pass or split-K attention; the backend's
// options force the fallbacks on a device -- lavapipe -- that has every feature): the options
// pick the requested paths, host uploads stay ordered with queued ops, scratch is zeroed even
// with ops queued, a foreign pointer is a clear error. Every op against its kernels/ref twin on
// these same paths: tests/ops/backend_ops_test.cpp.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "kernels/ref/ref_ops.h"
#include "runtime/core/status.h"
#include "tests/runtime/test_util.h"
#include "tests/vulkan/vk_test_util.h"

namespace shardlm {
namespace {

using test::download_f32;
using test::random_floats;
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
