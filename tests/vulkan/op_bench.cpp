// vulkan-op-bench: GPU time of the Vulkan backend's ops on Qwen3-0.6B-like decode shapes, per
// shader variant (timestamps), and the weight bandwidth the matmuls reach. A benchmark, not a
// test: it asserts nothing and is not registered with ctest.
//   vulkan-op-bench [device] [repeats] [no-subgroup] [16bit | no-16bit]
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/backend/vulkan/vulkan_backend.h"
#include "runtime/core/status.h"
#include "tests/runtime/test_util.h"

using namespace shardlm;

namespace {
// Process CPU time, all threads (lavapipe runs shaders on worker threads): stable under load.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    VulkanOptions o;
    o.device = argc > 1 ? std::atoi(argv[1]) : 0;
    const int reps = argc > 2 ? std::atoi(argv[2]) : 3;
    for (int i = 3; i < argc; ++i) {  // force paths: "no-subgroup", "16bit", "no-16bit"
      if (std::string(argv[i]) == "no-subgroup") o.allow_subgroup_ops = false;
      if (std::string(argv[i]) == "16bit") o.storage_16bit = 1;
      if (std::string(argv[i]) == "no-16bit") o.storage_16bit = 0;
    }
    VulkanBackend b(o);
    std::printf("device: %s\n", b.device_info().name.c_str());
    std::vector<std::unique_ptr<DeviceBuffer>> own;
    auto up = [&](const std::vector<uint8_t>& bytes, DType dt, std::initializer_list<int64_t> s) {
      own.emplace_back();
      Tensor t = b.allocate_tensor(dt, s, MemoryKind::kWeights, own.back());
      b.copy_from_host(t, bytes.data(), bytes.size());
      return t;
    };
    auto f32 = [&](std::initializer_list<int64_t> s, uint64_t seed) {
      Tensor t(static_cast<void*>(nullptr), DType::kF32, s);
      return up(
          test::encode(test::random_floats(static_cast<size_t>(t.numel()), seed), DType::kF32),
          DType::kF32, s);
    };
    struct Shape {
      const char* name;
      int64_t n_out, n_in, n_tokens;
    };
    const Shape shapes[] = {{"wqkv", 4096, 1024, 1},      {"wo", 1024, 2048, 1},
                            {"gate_up", 6144, 1024, 1},   {"down", 1024, 3072, 1},
                            {"lm_head", 151936, 1024, 1}, {"gate_up x64", 6144, 1024, 64}};
    for (const Shape& s : shapes) {
      const Tensor w = up(
          test::encode(test::random_floats(static_cast<size_t>(s.n_out * s.n_in), 1), DType::kBF16),
          DType::kBF16, {s.n_out, s.n_in});
      const Tensor x = f32({s.n_tokens, s.n_in}, 2);
      const Tensor y = f32({s.n_tokens, s.n_out}, 3);
      b.matmul(x, w, Tensor{}, y);  // warm up (pipeline creation)
      b.synchronize();
      b.reset_stream_stats();
      b.set_profiling(true);
      const double cpu0 = cpu_seconds();
      for (int r = 0; r < reps; ++r) b.matmul(x, w, Tensor{}, y);
      b.synchronize();
      const double cpu_ms = (cpu_seconds() - cpu0) / reps * 1e3;
      b.set_profiling(false);
      for (const auto& [name, ns] : b.op_gpu_ns()) {
        const double sec = static_cast<double>(ns) / reps * 1e-9;
        std::printf(
            "%-12s [%6lld x %5lld] x %3lld tok  %-22s %9.3f ms GPU (%8.3f ms CPU)  "
            "%7.2f GB/s of weights\n",
            s.name, static_cast<long long>(s.n_out), static_cast<long long>(s.n_in),
            static_cast<long long>(s.n_tokens), name.c_str(), sec * 1e3, cpu_ms,
            static_cast<double>(w.nbytes()) / sec * 1e-9);
      }
      own.clear();
    }
    // Elementwise: y += x over 4 Mi floats.
    const int64_t n = int64_t{1} << 22;
    const Tensor y = f32({n}, 4), x = f32({n}, 5);
    b.add(y, x);
    b.synchronize();
    b.reset_stream_stats();
    b.set_profiling(true);
    const double cpu0 = cpu_seconds();
    for (int r = 0; r < reps; ++r) b.add(y, x);
    b.synchronize();
    const double cpu_ms = (cpu_seconds() - cpu0) / reps * 1e3;
    b.set_profiling(false);
    for (const auto& [name, ns] : b.op_gpu_ns()) {
      const double sec = static_cast<double>(ns) / reps * 1e-9;
      std::printf("add [%lld]  %-10s %9.3f ms GPU (%8.3f ms CPU)  %7.2f GB/s moved\n",
                  static_cast<long long>(n), name.c_str(), sec * 1e3, cpu_ms,
                  static_cast<double>(3 * n * 4) / sec * 1e-9);
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "vulkan-op-bench: %s\n", e.what());
    return 2;
  }
}
