// Test helpers: random data, comparisons, temp dirs.
#include "tests/runtime/test_util.h"

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstring>

namespace shardlm::test {

std::vector<float> random_floats(size_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> mag(scale / 64, scale);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(n);
  for (auto& x : v) x = sign(rng) ? mag(rng) : -mag(rng);
  return v;
}

std::vector<uint8_t> encode(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> out(v.size() * dtype_size(dtype));
  convert_dtype(v.data(), DType::kF32, out.data(), dtype, v.size());
  return out;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

float max_abs(const float* a, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i]));
  return m;
}

TempDir::TempDir(const std::string& tag) {
  static_assert(sizeof(pid_t) <= 8);
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("shardlm-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace shardlm::test
