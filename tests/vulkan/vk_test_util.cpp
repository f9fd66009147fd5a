// Vulkan test helpers.
#include "tests/vulkan/vk_test_util.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/core/status.h"

namespace shardlm::test {

int vulkan_test_device() {
  const char* d = std::getenv("SHARDLM_VULKAN_TEST_DEVICE");
  return d ? std::atoi(d) : 0;
}

bool vulkan_skip_allowed() {
  const char* mode = std::getenv("SHARDLM_VULKAN_TESTS");
  return mode && std::strcmp(mode, "skip-without-device") == 0;
}

std::unique_ptr<VulkanBackend> make_test_backend(VulkanOptions options) {
  options.device = vulkan_test_device();
  try {
    return make_vulkan_backend(options);
  } catch (const Error& e) {
    if (vulkan_skip_allowed()) {
      std::fprintf(stderr, "skipping: %s\n", e.what());
      return nullptr;
    }
    ADD_FAILURE() << "no usable Vulkan device: " << e.what()
                  << "\n(install lavapipe: apt-get install mesa-vulkan-drivers; or set "
                     "SHARDLM_VULKAN_TESTS=skip-without-device)";
  }
  return nullptr;
}

Tensor upload(Backend& b, const std::vector<uint8_t>& bytes, DType dtype,
              std::initializer_list<int64_t> shape,
              std::vector<std::unique_ptr<DeviceBuffer>>& own) {
  own.emplace_back();
  Tensor t = b.allocate_tensor(dtype, shape, MemoryKind::kScratch, own.back());
  if (t.nbytes() != bytes.size()) {
    ADD_FAILURE() << "upload: " << bytes.size() << " bytes for " << t.describe();
    return t;
  }
  b.copy_from_host(t, bytes.data(), bytes.size());
  return t;
}

Tensor upload_f32(Backend& b, const std::vector<float>& data, std::initializer_list<int64_t> shape,
                  std::vector<std::unique_ptr<DeviceBuffer>>& own) {
  std::vector<uint8_t> bytes(data.size() * sizeof(float));
  std::memcpy(bytes.data(), data.data(), bytes.size());
  return upload(b, bytes, DType::kF32, shape, own);
}

std::vector<float> download_f32(Backend& b, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  b.copy_to_host(out.data(), t, out.size() * sizeof(float));
  return out;
}

}  // namespace shardlm::test
