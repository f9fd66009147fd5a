// The Vulkan command stream: command buffers recorded once per op-list shape and replayed with
// new data (results must equal fresh recordings), timestamps and per-op profiling, the
// pipeline cache file, device selection errors, and the host-visible-memory communicator.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "kernels/ref/ref_ops.h"
#include "runtime/comm/thread_group.h"
#include "runtime/comm/vulkan_communicator.h"
#include "runtime/core/status.h"
#include "tests/runtime/test_util.h"
#include "tests/vulkan/vk_test_util.h"

namespace shardlm {
namespace {

using test::download_f32;
using test::random_floats;
using test::upload_f32;

// One "decode step" shaped op list: rms_norm, matmul, rope, add. Returns the output.
std::vector<float> step(VulkanBackend& b, const Tensor& x, const Tensor& w, const Tensor& nw,
                        const Tensor& inv, const Tensor& h, const Tensor& y, int32_t pos) {
  b.rms_norm(x, nw, 1e-5f, h);
  b.matmul(h, w, Tensor{}, y);
  const std::vector<int32_t> p = {pos};
  b.rope(y.reshaped({1, 2, 16}), p, inv);
  b.add(y, h.slice_rows(0, 1).reshaped({32}));
  return download_f32(b, y);
}

TEST(VulkanStream, ReplayedCommandBuffersGiveFreshResults) {
  std::vector<std::vector<float>> outs[2];
  uint64_t replayed[2] = {0, 0}, recorded[2] = {0, 0};
  for (int reuse = 0; reuse < 2; ++reuse) {
    VulkanOptions o;
    o.reuse_command_buffers = reuse == 1;
    auto b = test::make_test_backend(o);
    SHARDLM_REQUIRE_VULKAN(b);
    std::vector<std::unique_ptr<DeviceBuffer>> own;
    const Tensor w = upload_f32(*b, random_floats(32 * 32, 1), {32, 32}, own);
    const Tensor nw = upload_f32(*b, random_floats(32, 2), {32}, own);
    std::vector<float> inv(8);
    for (int i = 0; i < 8; ++i) inv[static_cast<size_t>(i)] = std::pow(10000.0f, -i / 8.0f);
    const Tensor ti = upload_f32(*b, inv, {8}, own);
    const Tensor x = upload_f32(*b, random_floats(32, 3), {1, 32}, own);
    const Tensor h = upload_f32(*b, random_floats(32, 4), {1, 32}, own);
    const Tensor y = upload_f32(*b, random_floats(32, 5), {1, 32}, own);
    b->synchronize();
    b->reset_stream_stats();
    for (int32_t s = 0; s < 6; ++s) {
      b->copy_from_host(x, random_floats(32, 10 + static_cast<uint64_t>(s)).data(), 32 * 4);
      outs[reuse].push_back(step(*b, x, w, nw, ti, h, y, 5 + s * 100));
    }
    replayed[reuse] = b->stream_stats().replayed;
    recorded[reuse] = b->stream_stats().recorded;
  }
  EXPECT_EQ(outs[0], outs[1]);  // same shaders, same data: bit-identical
  EXPECT_EQ(replayed[0], 0u);
  EXPECT_EQ(recorded[0], 6u);
  EXPECT_EQ(recorded[1], 1u) << "one op-list shape, recorded once";
  EXPECT_EQ(replayed[1], 5u);
  for (size_t s = 1; s < outs[1].size(); ++s) EXPECT_NE(outs[1][s], outs[1][0]);  // new data used
}

TEST(VulkanStream, TimestampsAndPerOpProfile) {
  auto b = test::make_test_backend();
  SHARDLM_REQUIRE_VULKAN(b);
  if (!b->device_info().timestamps) GTEST_SKIP() << "device has no timestamps";
  std::vector<std::unique_ptr<DeviceBuffer>> own;
  const Tensor x = upload_f32(*b, random_floats(4096, 1), {8, 512}, own);
  const Tensor w = upload_f32(*b, random_floats(512 * 256, 2), {256, 512}, own);
  const Tensor y = upload_f32(*b, random_floats(8 * 256, 3), {8, 256}, own);
  b->synchronize();
  b->reset_stream_stats();
  b->set_profiling(true);
  b->matmul(x, w, Tensor{}, y);
  b->add(y, y);
  b->synchronize();
  b->set_profiling(false);
  EXPECT_GT(b->stream_stats().gpu_ns, 0u);
  const auto& per_op = b->op_gpu_ns();
  ASSERT_EQ(per_op.size(), 2u);
  EXPECT_EQ(per_op.count("add"), 1u);
  for (const auto& [name, ns] : per_op)
    std::printf("VULKAN profile %s: %llu ns\n", name.c_str(), static_cast<unsigned long long>(ns));
}

TEST(VulkanStream, PipelineCacheFileIsWrittenAndReused) {
  test::TempDir dir("vk-pcache");
  const std::string path = (dir.path() / "pipelines.bin").string();
  for (int round = 0; round < 2; ++round) {
    VulkanOptions o;
    o.pipeline_cache_path = path;
    auto b = test::make_test_backend(o);
    SHARDLM_REQUIRE_VULKAN(b);
    std::vector<std::unique_ptr<DeviceBuffer>> own;
    const Tensor a = upload_f32(*b, random_floats(100, 1), {100}, own);
    const Tensor c = upload_f32(*b, random_floats(100, 2), {100}, own);
    b->add(a, c);
    b->synchronize();
    EXPECT_EQ(b->pipelines_created(), 1u);
    own.clear();
    b.reset();  // saves the cache
    ASSERT_TRUE(std::filesystem::exists(path));
    EXPECT_GT(std::filesystem::file_size(path), 0u);
  }
}

TEST(VulkanDevices, ListingAndBadIndex) {
  auto b = test::make_test_backend();
  SHARDLM_REQUIRE_VULKAN(b);
  const auto devices = list_vulkan_devices();
  ASSERT_FALSE(devices.empty());
  std::printf("VULKAN devices:\n%s", format_vulkan_devices(devices).c_str());
  VulkanOptions o;
  o.device = static_cast<int>(devices.size()) + 3;
  try {
    VulkanBackend bad(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(devices[0].name), std::string::npos) << e.what();
  }
}

// Two ranks on one device: all_reduce_sum / broadcast / all_gather of device tensors through
// host-visible memory (and through staging copies when mapping is disabled).
TEST(VulkanCommunicator, TwoRanksOnOneDevice) {
  for (bool mapped : {true, false}) {
    ThreadGroup group(2);
    std::vector<std::unique_ptr<VulkanBackend>> be(2);
    for (auto& b : be) {
      VulkanOptions o;
      o.allow_host_visible = mapped;
      b = test::make_test_backend(o);
      SHARDLM_REQUIRE_VULKAN(b);
    }
    const int64_t n = 3000;
    const auto a0 = random_floats(n, 1), a1 = random_floats(n, 2);
    std::vector<float> sum(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      sum[static_cast<size_t>(i)] = a0[static_cast<size_t>(i)] + a1[static_cast<size_t>(i)];
    std::vector<std::vector<float>> reduced(2), bcast(2), gathered(2);
    std::vector<std::thread> th;
    for (int r = 0; r < 2; ++r) {
      th.emplace_back([&, r] {
        VulkanBackend& b = *be[static_cast<size_t>(r)];
        auto host = group.communicator(r);
        auto comm = b.make_communicator(*host);
        std::vector<std::unique_ptr<DeviceBuffer>> own;
        const Tensor t = upload_f32(b, r == 0 ? a0 : a1, {n}, own);
        const Tensor one = upload_f32(b, r == 0 ? a0 : a1, {n}, own);
        b.add(one, t);  // queued work the collective must flush first
        comm->all_reduce_sum(t.as<float>(), n, t.space);
        reduced[static_cast<size_t>(r)] = download_f32(b, t);
        comm->broadcast(one.data, static_cast<size_t>(n) * 4, 1, one.space);
        bcast[static_cast<size_t>(r)] = download_f32(b, one);
        const Tensor g = upload_f32(b, std::vector<float>(2 * 8, 0.5f), {16}, own);
        const Tensor mine =
            upload_f32(b, std::vector<float>(8, static_cast<float>(r + 1)), {8}, own);
        comm->all_gather(mine.data, 32, g.data, 64, MemorySpace::kDevice);
        gathered[static_cast<size_t>(r)] = download_f32(b, g);
        comm->barrier();
      });
    }
    for (auto& t : th) t.join();
    std::vector<float> twice_a1(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      twice_a1[static_cast<size_t>(i)] = a1[static_cast<size_t>(i)] + a1[static_cast<size_t>(i)];
    std::vector<float> g_want(16, 1.0f);
    std::fill(g_want.begin() + 8, g_want.end(), 2.0f);
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(reduced[static_cast<size_t>(r)], sum) << "mapped " << mapped;
      EXPECT_EQ(bcast[static_cast<size_t>(r)], twice_a1) << "mapped " << mapped;
      EXPECT_EQ(gathered[static_cast<size_t>(r)], g_want) << "mapped " << mapped;
    }
  }
}

}  // namespace
}  // namespace shardlm

namespace shardlm {
namespace {

TEST(VulkanDevices, RankDeviceSelection) {
  std::vector<VulkanDeviceInfo> all(3);
  for (int i = 0; i < 3; ++i) {
    all[static_cast<size_t>(i)].index = i;
    all[static_cast<size_t>(i)].usable = true;
  }
  all[0].type = "cpu";  // lavapipe listed first
  all[1].type = "discrete-gpu";
  all[2].type = "discrete-gpu";
  EXPECT_EQ(vulkan_rank_devices({}, nullptr, all), (std::vector<int>{1, 2}));  // GPUs only
  EXPECT_EQ(vulkan_rank_devices({2}, "0,1", all), (std::vector<int>{2}));      // caller wins
  EXPECT_EQ(vulkan_rank_devices({}, "0,2", all), (std::vector<int>{0, 2}));    // then the env
  all[1].usable = all[2].usable = false;
  EXPECT_EQ(vulkan_rank_devices({}, "", all), (std::vector<int>{0}));  // no GPU: lavapipe
  // Not an index, an empty item, or past int (was std::out_of_range): a clear error.
  for (const char* env : {"1,x", "0,,1", "99999999999999999999", "-1"}) {
    try {
      vulkan_rank_devices({}, env, all);
      ADD_FAILURE() << "expected an error for " << env;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kInvalidArg) << env;
      EXPECT_NE(std::string(e.what()).find("SHARDLM_VULKAN_DEVICES"), std::string::npos) << env;
    }
  }
}

}  // namespace
}  // namespace shardlm
