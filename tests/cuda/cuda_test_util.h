// Helpers for the CUDA tests: skip cleanly when this machine has no usable GPU (no driver,
// no device), and move f32 data between host vectors and backend tensors.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/backend/backend.h"
#include "kernels/cuda/cuda_device.h"

namespace shardlm::test {

// True when at least one CUDA device is usable; `why` receives the reason otherwise.
inline bool have_cuda_device(std::string* why = nullptr) {
  return cuda_device_count(why) > 0;
}

#define SHARDLM_REQUIRE_CUDA_DEVICE()                      \
  do {                                                     \
    std::string why_no_gpu;                                \
    if (!::shardlm::test::have_cuda_device(&why_no_gpu)) { \
      GTEST_SKIP() << "no CUDA device: " << why_no_gpu;    \
    }                                                      \
  } while (0)

// A device tensor holding `values` (f32), owned by `owner`.
inline Tensor upload(Backend& b, const std::vector<float>& values,
                     std::initializer_list<int64_t> shape, std::unique_ptr<DeviceBuffer>& owner) {
  Tensor t = b.allocate_tensor(DType::kF32, shape, MemoryKind::kScratch, owner);
  b.copy_from_host(t, values.data(), values.size() * sizeof(float));
  return t;
}

inline std::vector<float> download(Backend& b, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  b.copy_to_host(out.data(), t, out.size() * sizeof(float));
  return out;
}

}  // namespace shardlm::test
