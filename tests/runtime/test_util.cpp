// Test helpers: random data, comparisons, temp dirs.
#include "tests/runtime/test_util.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

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

std::vector<std::filesystem::path> hf_fixture_dirs(const std::string& fixtures_root) {
  namespace fs = std::filesystem;
  std::vector<fs::path> out;
  const fs::path root = fs::path(fixtures_root) / "hf";
  if (!fs::is_directory(root)) return out;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && fs::exists(e.path() / "reference.json")) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

HfReference load_hf_reference(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "reference.json";
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  nlohmann::json j;
  try {
    in >> j;
    HfReference r;
    r.prompt = j.at("prompt_ids").get<std::vector<int32_t>>();
    r.greedy = j.at("greedy_ids").get<std::vector<int32_t>>();
    r.weights_dtype = j.value("weights_dtype", std::string("float32"));
    r.native_bf16_max_abs_diff = j.value("native_bf16_prefill_max_abs_diff", 0.0f);
    const auto rows = j.at("prefill_logits").get<std::vector<std::vector<float>>>();
    if (rows.size() != r.prompt.size() || rows.empty())
      throw std::runtime_error("prefill_logits has " + std::to_string(rows.size()) + " rows for " +
                               std::to_string(r.prompt.size()) + " prompt ids");
    r.n_vocab = static_cast<int64_t>(rows[0].size());
    for (const auto& row : rows) r.prefill_logits.insert(r.prefill_logits.end(), row.begin(), row.end());
    auto [lo, hi] = std::minmax_element(r.prefill_logits.begin(), r.prefill_logits.end());
    r.logit_range = *hi - *lo;
    return r;
  } catch (const std::exception& e) {
    throw std::runtime_error(file.string() + ": " + e.what());
  }
}

std::string fixture_param_name(const std::filesystem::path& dir) {
  std::string n = dir.filename().string();
  if (n.empty()) n = "none";
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

}  // namespace shardlm::test
