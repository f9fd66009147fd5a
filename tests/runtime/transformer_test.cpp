// The per-rank Transformer on its own: exactly two all-reduces per layer (plus one for the
// vocab-parallel embedding), weights used in place from the mapping, and a rank/tp mismatch
// between pack and communicator rejected; plus the backend registry's unknown-name error.
#include <gtest/gtest.h>

#include "packer/packer.h"
#include "runtime/backend/registry.h"
#include "runtime/comm/communicator.h"
#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"
#include "runtime/model/transformer.h"
#include "tests/runtime/test_util.h"
#include "tests/runtime/tiny_checkpoint.h"

namespace shardlm {
namespace {

class CountingCommunicator final : public Communicator {
 public:
  explicit CountingCommunicator(std::unique_ptr<Communicator> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  void all_reduce_sum(float* d, int64_t n, MemorySpace space) override {
    ++all_reduces;
    inner_->all_reduce_sum(d, n, space);
  }
  void all_gather(const void* s, size_t sb, void* r, size_t rb, MemorySpace space) override {
    inner_->all_gather(s, sb, r, rb, space);
  }
  void broadcast(void* d, size_t b, int root, MemorySpace space) override {
    inner_->broadcast(d, b, root, space);
  }
  void barrier() override { inner_->barrier(); }
  int all_reduces = 0;

 private:
  std::unique_ptr<Communicator> inner_;
};

std::string pack_dir(const test::TempDir& tmp, int tp) {
  test::TinyModelSpec spec = test::tiny_qwen3();
  spec.n_layer = 3;
  const std::string model = (tmp.path() / "model").string();
  test::write_tiny_checkpoint(spec, model);
  PackOptions o;
  o.model_dir = model;
  o.out_dir = (tmp.path() / "pack").string();
  o.tp_size = tp;
  pack_checkpoint(o);
  return o.out_dir;
}

TEST(TransformerTest, TwoAllReducesPerLayerAndWeightsInPlace) {
  test::TempDir tmp("xf");
  const std::string dir = pack_dir(tmp, 1);
  auto pack = PackReader::open(dir + "/rank-0-of-1.shardlm");
  auto backend = builtin_backends().create("cpu", {});
  CountingCommunicator comm(make_single_communicator());
  Transformer model(*pack, *backend, comm, 16);
  EXPECT_EQ(model.weights().bytes_copied, 0u);
  EXPECT_GT(model.weights().bytes_in_place, 0u);
  // The tensors point into the mapping itself.
  const uint8_t* map_begin = pack->mapping().data();
  const uint8_t* map_end = map_begin + pack->mapping().size();
  const auto* wqkv = static_cast<const uint8_t*>(model.weights().layers[0].wqkv.data);
  EXPECT_TRUE(wqkv >= map_begin && wqkv < map_end);

  auto cache = model.make_cache(32);
  const std::vector<int32_t> ids = {3, 1, 4, 1, 5};
  model.forward(ids, *cache, true);
  EXPECT_EQ(comm.all_reduces, 1 + 2 * 3);
  comm.all_reduces = 0;
  model.forward(std::vector<int32_t>{9}, *cache, false);
  EXPECT_EQ(comm.all_reduces, 1 + 2 * 3);
  EXPECT_EQ(cache->n_past(), 6);
}

TEST(TransformerTest, RankMismatchBetweenPackAndCommunicatorIsRejected) {
  test::TempDir tmp("xf-rank");
  const std::string dir = pack_dir(tmp, 2);
  auto pack = PackReader::open(dir + "/rank-1-of-2.shardlm");
  auto backend = builtin_backends().create("cpu", {});
  auto single = make_single_communicator();  // claims rank 0 of 1
  try {
    Transformer model(*pack, *backend, *single, 8);
    FAIL() << "expected a rank mismatch error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 of 2"), std::string::npos) << e.what();
  }
}

TEST(BackendRegistryTest, UnknownBackendListsAvailable) {
  try {
    builtin_backends().create("tpu", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
    EXPECT_NE(std::string(e.what()).find("available: cpu"), std::string::npos) << e.what();
  }
}

// Backend settings: "key=value" items, the setting over its environment variable, unknown keys
// and bad values refused with the name.
TEST(BackendSettingsTest, ParsedPreferredOverTheEnvironmentAndCheckedByTheBackend) {
  const auto s = parse_backend_settings(" isa = avx2 ,amx_splits=1,, ");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].key, "isa");
  EXPECT_EQ(s[0].value, "avx2");
  EXPECT_EQ(s[1].key, "amx_splits");
  EXPECT_TRUE(parse_backend_settings("").empty());
  for (const char* bad : {"isa", "=avx2", "isa=avx2,oops"}) {
    try {
      parse_backend_settings(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
      EXPECT_NE(std::string(e.what()).find("expected key=value"), std::string::npos) << e.what();
    }
  }
  BackendOptions o;
  o.settings = {{"isa", "scalar"}};
  ::setenv("SHARDLM_TEST_SETTING", "avx512", 1);
  EXPECT_EQ(backend_setting(o, "isa", "SHARDLM_TEST_SETTING"), "scalar");
  EXPECT_EQ(backend_setting(o, "other", "SHARDLM_TEST_SETTING"), "avx512");
  ::unsetenv("SHARDLM_TEST_SETTING");
  EXPECT_FALSE(backend_setting(o, "other", "SHARDLM_TEST_SETTING").has_value());
  auto with = [](std::vector<BackendSetting> settings) {
    BackendOptions bo;
    bo.settings = std::move(settings);
    return bo;
  };
  EXPECT_TRUE(backend_flag(with({{"graphs", "on"}}), "graphs", nullptr, false));
  EXPECT_FALSE(backend_flag(BackendOptions{}, "graphs", nullptr, false));
  auto refused = [](const BackendOptions& bo, const std::string& want) {
    try {
      builtin_backends().create("cpu", bo);
      ADD_FAILURE() << "accepted; wanted: " << want;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  refused(
      with({{"graphs", "0"}}),
      "cpu backend: unknown setting 'graphs' (it takes: isa, amx_splits, kv_touch, pin_threads)");
  refused(with({{"isa", "sse9"}}), "isa=sse9");
  refused(with({{"amx_splits", "4"}}), "amx_splits=4");
  refused(with({{"kv_touch", "yes"}}), "kv_touch=yes: expected on or off");
  EXPECT_NE(builtin_backends().create("cpu", with({{"kv_touch", "off"}})), nullptr);
  refused(with({{"pin_threads", "cores"}}),
          "setting pin_threads=cores: expected 1, true, on, 0, false or off");
  EXPECT_NE(builtin_backends().create("cpu", with({{"pin_threads", "off"}})), nullptr);
  EXPECT_NE(builtin_backends().create("cpu", with({{"isa", "scalar"}})), nullptr);
}

}  // namespace
}  // namespace shardlm
