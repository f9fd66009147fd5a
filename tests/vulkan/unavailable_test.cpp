// Without a Vulkan driver or without the Vulkan loader, the "vulkan" backend reports "not
// available" with the reason (Error(kBackend)), never crashes, and the CPU backend still works.
// This binary hides every driver from the loader (VK_DRIVER_FILES / VK_ICD_FILENAMES pointing
// at a file that does not exist) before anything touches Vulkan; the missing-loader case points
// the backend at a loader library that does not exist.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "packer/packer.h"
#include "runtime/backend/registry.h"
#include "runtime/backend/vulkan/vulkan_backend.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generate.h"
#include "tests/runtime/test_util.h"

namespace shardlm {
namespace {

class HideDrivers : public ::testing::Environment {
 public:
  void SetUp() override {
    setenv("VK_DRIVER_FILES", "/nonexistent/shardlm-no-driver.json", 1);
    setenv("VK_ICD_FILENAMES", "/nonexistent/shardlm-no-driver.json", 1);
    unsetenv("VK_ADD_DRIVER_FILES");
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new HideDrivers);

template <class F>
void expect_not_available(F&& f, const char* reason) {
  try {
    f();
    ADD_FAILURE() << "expected 'vulkan backend not available'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kBackend) << e.what();
    const std::string msg = e.what();
    EXPECT_NE(msg.find("vulkan backend not available"), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
    std::printf("VULKAN unavailable: %s\n", msg.c_str());
  }
}

TEST(VulkanUnavailable, NoDriverIsReported) {
  expect_not_available([] { VulkanBackend b(VulkanOptions{}); }, "driver");
  expect_not_available([] { list_vulkan_devices(); }, "driver");
}

TEST(VulkanUnavailable, NoLoaderIsReported) {
  VulkanOptions o;
  o.loader = "/nonexistent/libvulkan.so.1";
  expect_not_available([&] { VulkanBackend b(o); }, "cannot load the Vulkan loader");
}

TEST(VulkanUnavailable, RegistryListsVulkanButCreateReportsIt) {
  const BackendRegistry r = builtin_backends();
  EXPECT_TRUE(r.has("vulkan"));
  expect_not_available([&] { r.create("vulkan", BackendOptions{}); }, "driver");
}

TEST(VulkanUnavailable, CpuBackendStillRunsTheModel) {
  const std::filesystem::path dir =
      std::filesystem::path(SHARDLM_FIXTURES_DIR) / "hf" / "qwen3_mqa_f32";
  ASSERT_TRUE(std::filesystem::exists(dir / "reference.json")) << dir;
  nlohmann::json ref;
  std::ifstream(dir / "reference.json") >> ref;
  const auto prompt = ref.at("prompt_ids").get<std::vector<int32_t>>();
  const auto greedy_ref = ref.at("greedy_ids").get<std::vector<int32_t>>();
  test::TempDir tmp("vk-unavailable");
  PackOptions po;
  po.model_dir = dir.string();
  po.out_dir = (tmp.path() / "tp2").string();
  po.tp_size = 2;
  pack_checkpoint(po);

  EngineOptions eo;
  eo.pack_dir = po.out_dir;
  eo.n_threads = 2;
  eo.backend = "vulkan";
  expect_not_available([&] { Engine e(eo); }, "driver");

  eo.backend = "cpu";
  Engine cpu(eo);
  GenerateOptions go;
  go.max_new_tokens = static_cast<int64_t>(greedy_ref.size());
  go.ignore_eos = true;
  EXPECT_EQ(generate(cpu, prompt, go).tokens, greedy_ref);
}

}  // namespace
}  // namespace shardlm
