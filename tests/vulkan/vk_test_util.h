// Helpers for the Vulkan tests: a backend on the test device (SHARDLM_VULKAN_TEST_DEVICE,
// default 0) that fails the test with instructions when no Vulkan device exists -- CI installs
// lavapipe (mesa-vulkan-drivers), so a missing device is a setup error there, not a skip --
// unless SHARDLM_VULKAN_TESTS=skip-without-device asks to skip; and device <-> host helpers.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/backend/vulkan/vulkan_backend.h"

namespace shardlm::test {

int vulkan_test_device();
bool vulkan_skip_allowed();
// Creates the backend, or returns null after recording a failure (nothing when skipping is
// allowed; SHARDLM_REQUIRE_VULKAN then skips).
std::unique_ptr<VulkanBackend> make_test_backend(VulkanOptions options = {});
// Ends the test (failed, or skipped when allowed) when `backend` is null.
#define SHARDLM_REQUIRE_VULKAN(backend)                                               \
  do {                                                                                \
    if (!(backend)) {                                                                 \
      if (::shardlm::test::vulkan_skip_allowed()) GTEST_SKIP() << "no Vulkan device"; \
      return;                                                                         \
    }                                                                                 \
  } while (0)

// A device tensor holding `data` (as `dtype`, 4-byte f32 or encoded f16/bf16 bytes).
Tensor upload(Backend& b, const std::vector<uint8_t>& bytes, DType dtype,
              std::initializer_list<int64_t> shape,
              std::vector<std::unique_ptr<DeviceBuffer>>& own);
Tensor upload_f32(Backend& b, const std::vector<float>& data, std::initializer_list<int64_t> shape,
                  std::vector<std::unique_ptr<DeviceBuffer>>& own);
std::vector<float> download_f32(Backend& b, const Tensor& t);

}  // namespace shardlm::test
