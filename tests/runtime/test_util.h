// Helpers shared by the runtime tests: seeded random data (never zeros), max-abs-error
// comparison, fixture discovery and packing a fixture into a temporary directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/dtype.h"

namespace shardlm::test {

// Uniform in [-scale, scale], bounded away from zero (|x| >= scale / 64).
std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f);
// Encodes f32 values as `dtype` bytes (f32 copy, or rounded f16/bf16).
std::vector<uint8_t> encode(const std::vector<float>& v, DType dtype);
float max_abs_diff(const float* a, const float* b, size_t n);
float max_abs(const float* a, size_t n);

// One committed Hugging Face fixture (tests/fixtures/hf/<name>/reference.json).
struct HfReference {
  std::vector<int32_t> prompt;          // prompt ids
  std::vector<int32_t> greedy;          // HF greedy continuation
  std::vector<float> prefill_logits;    // [n_prompt, n_vocab] row-major
  int64_t n_vocab = 0;
  std::string weights_dtype;            // "float32" | "bfloat16"
  float logit_range = 0;                // max - min of prefill_logits
  // bf16 fixtures: how far HF's own bf16 computation is from the f32 reference (max abs over the
  // prompt's logits); 0 for f32 fixtures.
  float native_bf16_max_abs_diff = 0;
};
// Fixture directories under <fixtures_root>/hf that hold a reference.json, sorted.
std::vector<std::filesystem::path> hf_fixture_dirs(const std::string& fixtures_root);
// The gtest parameter name of a fixture directory: its file name with every non-alphanumeric
// character as '_' ("none" for the empty placeholder path).
std::string fixture_param_name(const std::filesystem::path& dir);
// Reads <dir>/reference.json; throws std::runtime_error naming the file when malformed.
HfReference load_hf_reference(const std::filesystem::path& dir);

// A directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace shardlm::test
