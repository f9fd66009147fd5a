// Fuzz target: model.safetensors.index.json of a sharded checkpoint. The input is written as the
// index of a folder that holds two valid shards (tensor "a" in the first, "b" in the second);
// Checkpoint must accept an index that maps each tensor to its shard, and refuse anything else
// (names outside the folder, missing files, tensors in the wrong file) with an Error.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "formats/safetensors.h"
#include "fuzz_util.h"
#include "tiny_checkpoint.h"

namespace {

std::string g_dir;

void remove_dir() {
  std::error_code ec;
  std::filesystem::remove_all(g_dir, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using shardlm::testing::RawTensor;
  std::string pattern = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") +
                        std::string("/shardlm-fuzz-index-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) shardlm::fuzz::finding("mkdtemp failed");
  g_dir = pattern;
  atexit(remove_dir);
  const RawTensor a{"a", "F32", {2}, std::vector<uint8_t>(8, 1)};
  const RawTensor b{"b", "BF16", {3}, std::vector<uint8_t>(6, 2)};
  shardlm::testing::write_file(g_dir + "/model-00001-of-00002.safetensors",
                               shardlm::testing::safetensors_bytes({a}));
  shardlm::testing::write_file(g_dir + "/model-00002-of-00002.safetensors",
                               shardlm::testing::safetensors_bytes({b}));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardlm;
  testing::write_text(g_dir + "/model.safetensors.index.json",
                      std::string(reinterpret_cast<const char*>(data), size));
  fuzz::expect_clear_error([&] {
    const Checkpoint ckpt(g_dir);
    for (const std::string& name : ckpt.names()) {
      const SafeTensor* t = ckpt.find(name);
      fuzz::check(t != nullptr && t->name == name,
                  "names() lists '" + name + "' but find() misses it");
      fuzz::touch(t->data, t->nbytes());
    }
  });
  return 0;
}
