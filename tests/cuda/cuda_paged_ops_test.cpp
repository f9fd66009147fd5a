// The cuda backend's paged-KV ops (store_kv, paged_attention) beyond their results, and the step
// engine on the cuda backend against the cpu backend's:
//   - the launch plan (plan_paged_attention): decode runs vs prefill tiles, key splits;
//   - which kernels serve a step: decode rows, prefill tiles, split-K for a long decode;
//   - bad layouts and slots are Errors naming the op, and the backend stays usable;
//   - a paged decode step captured as a CUDA graph gives exactly the eager step's logits;
//   - the step engine end to end on the HF fixtures: 4 batched greedy requests give the cpu
//     backend's tokens (and logits within tolerance) at tp 1 and 2, f32 and bf16 KV.
// The launch plan is checked without a GPU; everything else skips without one. store_kv and
// paged_attention against kernels/ref (every KV dtype, mixed steps, shuffled block tables,
// windows, MHA / GQA / MQA, head_dim 16..256, long decode contexts):
// tests/ops/backend_ops_test.cpp.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_ops.h"
#include "packer/packer.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/step_engine.h"
#include "runtime/model/kv_pool.h"
#include "runtime/model/step_input.h"
#include "runtime/model/transformer.h"
#include "tests/batching/step_test_util.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/runtime/paged_test_util.h"
#include "tests/runtime/test_util.h"
#include "tests/runtime/tiny_checkpoint.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using test::random_floats;

// Largest |a - b|; infinity when any value is NaN (outputs start as NaN, so a row the kernels
// never wrote fails instead of passing unnoticed).
float max_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

// ---- the launch plan (no GPU) ----

TEST(PagedPlan, SplitsDecodeRunsFromPrefillTiles) {
  // Sequences: 1 token, 8 tokens (the longest decode run), 9 tokens (tiles), 40 tokens.
  std::vector<int32_t> starts = {0, 1, 9, 18, 58};
  std::vector<int32_t> pos;
  pos.push_back(100);
  for (int i = 0; i < 8; ++i) pos.push_back(20 + i);
  for (int i = 0; i < 9; ++i) pos.push_back(i);
  for (int i = 0; i < 40; ++i) pos.push_back(300 + i);
  // GQA 8/2: group 4, 4 tokens per tile.
  const cuda::PagedAttentionPlan p = cuda::plan_paged_attention(pos, starts, 8, 2, 0, 132);
  EXPECT_EQ(cuda::paged_tile_tokens(8, 2), 4);
  ASSERT_EQ(p.decode_token.size(), 9u);
  EXPECT_EQ(p.decode_token.front(), 0);
  EXPECT_EQ(p.decode_seq.front(), 0);
  EXPECT_EQ(p.decode_token.back(), 8);
  EXPECT_EQ(p.decode_seq.back(), 1);
  EXPECT_EQ(p.decode_max_keys, 101);
  // 9 tokens -> 3 tiles, 40 -> 10; the 40-token chunk's tiles (larger positions) first.
  ASSERT_EQ(p.tile_seq.size(), 13u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(p.tile_seq[i], 3);
  EXPECT_EQ(p.tile_first[0], 54);
  EXPECT_EQ(p.tile_end[0], 58);
  // 9 = 4 + 4 + 1: the 1-token tail (position 8) first.
  EXPECT_EQ(p.tile_seq[10], 2);
  EXPECT_EQ(p.tile_first[10], 17);
  EXPECT_EQ(p.tile_end[10], 18);
  EXPECT_EQ(p.tile_first[12], 9);
  EXPECT_EQ(p.tile_end[12], 13);
  for (size_t i = 1; i < p.tile_seq.size(); ++i) {  // last positions never increase
    EXPECT_GE(pos[static_cast<size_t>(p.tile_end[i - 1] - 1)],
              pos[static_cast<size_t>(p.tile_end[i] - 1)]);
  }
  int64_t covered = 0;
  for (size_t i = 0; i < p.tile_seq.size(); ++i) covered += p.tile_end[i] - p.tile_first[i];
  EXPECT_EQ(covered, 49);
}

TEST(PagedPlan, LongDecodeContextsSplitKeysAndWindowsBoundThem) {
  std::vector<int32_t> starts = {0, 1, 2};
  std::vector<int32_t> pos = {1499, 3};
  const auto p = cuda::plan_paged_attention(pos, starts, 32, 8, 0, 132);
  EXPECT_EQ(p.decode_max_keys, 1500);
  EXPECT_GT(p.n_splits, 1);
  EXPECT_LE(p.n_splits, 1500 / 32);  // at least 32 keys per split
  const auto w = cuda::plan_paged_attention(pos, starts, 32, 8, 40, 132);
  EXPECT_EQ(w.decode_max_keys, 40);
  EXPECT_EQ(w.n_splits, 1);  // the window leaves too few keys to split
  // MQA, group 32: tiles of one token with 16 of the heads each.
  EXPECT_EQ(cuda::paged_tile_tokens(32, 1), 1);
  EXPECT_EQ(cuda::paged_tile_tokens(4, 4), 16);
}

// ---- the ops: launch paths and errors ----

class CudaPagedOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHARDLM_REQUIRE_CUDA_DEVICE();
    backend_ = make_cuda_backend(BackendOptions{});
  }

 public:  // helpers for the free functions below
  Tensor dev_bytes(const void* bytes, size_t n, DType dtype, std::initializer_list<int64_t> shape) {
    owners_.emplace_back();
    Tensor t = backend_->allocate_tensor(dtype, shape, MemoryKind::kScratch, owners_.back());
    EXPECT_EQ(t.nbytes(), n);
    backend_->copy_from_host(t, bytes, n);
    return t;
  }
  Tensor dev(const std::vector<float>& v, std::initializer_list<int64_t> shape) {
    return dev_bytes(v.data(), v.size() * sizeof(float), DType::kF32, shape);
  }
  std::vector<uint8_t> bytes_of(const Tensor& t) {
    std::vector<uint8_t> out(t.nbytes());
    backend_->copy_to_host(out.data(), t, out.size());
    return out;
  }
  const CudaBackendStats& stats() const { return *cuda_backend_stats(*backend_); }

  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<DeviceBuffer>> owners_;
};

using test::BlockAlloc;
using test::Pools;

// One sequence of a step: `n_query` query tokens ending at position `context - 1`.
struct SeqSpec {
  int64_t context;
  int64_t n_query;
};

// A step's layout arrays (block tables padded with -1 to one more column than the longest).
struct Step {
  std::vector<int32_t> pos, seq_starts{0}, block_table;
  int64_t max_blocks = 0;

  Step(const std::vector<SeqSpec>& seqs, int64_t bs, BlockAlloc& alloc) {
    std::vector<std::vector<int32_t>> blocks;
    for (const SeqSpec& s : seqs) {
      blocks.push_back(alloc.take((s.context + bs - 1) / bs));
      max_blocks = std::max<int64_t>(max_blocks, static_cast<int64_t>(blocks.back().size()));
    }
    ++max_blocks;
    for (size_t i = 0; i < seqs.size(); ++i) {
      for (int64_t p = seqs[i].context - seqs[i].n_query; p < seqs[i].context; ++p) {
        pos.push_back(static_cast<int32_t>(p));
      }
      seq_starts.push_back(static_cast<int32_t>(pos.size()));
      std::vector<int32_t> row(static_cast<size_t>(max_blocks), -1);
      std::copy(blocks[i].begin(), blocks[i].end(), row.begin());
      block_table.insert(block_table.end(), row.begin(), row.end());
    }
  }
  int64_t n_tokens() const { return static_cast<int64_t>(pos.size()); }
  int64_t n_seqs() const { return static_cast<int64_t>(seq_starts.size()) - 1; }
  StepLayoutView view() const {
    return {pos.data(), n_tokens(), seq_starts.data(), n_seqs(), block_table.data(), max_blocks};
  }
  StepLayout layout(int64_t bs) const {
    StepLayout l;
    l.positions = pos;
    l.seq_starts = seq_starts;
    l.block_table = block_table;
    l.max_blocks = max_blocks;
    l.block_size = bs;
    return l;
  }
};

// Which kernels serve a step (their results on these and many more layouts: backend_ops_test):
// a sequence of <= kPagedDecodeMaxRun tokens runs as decode rows, a longer chunk as prefill tiles
// of paged_tile_tokens(...) tokens, a lone decode over 2333 keys in key splits; one store_kv
// launch per call.
TEST_F(CudaPagedOpsTest, LaunchPathsFollowTheLayout) {
  const int64_t bs = 16, n_blocks = 200, n_head = 8, n_head_kv = 1, hd = 64;
  BlockAlloc alloc(n_blocks, 1);
  const Pools pools(n_blocks, bs, n_head_kv, hd, DType::kBF16, 2);
  const Tensor kp =
      dev_bytes(pools.k.data(), pools.k.size(), pools.dtype, {pools.n_slots, n_head_kv, hd});
  const Tensor vp =
      dev_bytes(pools.v.data(), pools.v.size(), pools.dtype, {pools.n_slots, n_head_kv, hd});
  const CudaBackendStats before = stats();
  const Tensor k = dev(random_floats(3 * n_head_kv * hd, 3), {3, n_head_kv, hd});
  backend_->store_kv(k, k, std::vector<int64_t>{5, -1, 17}, kp, vp);
  // A decode next to a 29-token chunk (37 keys: too few to split), then a long lone decode.
  const Step mixed({{37, 1}, {52, 29}}, bs, alloc);
  const Step long_decode({{2333, 1}}, bs, alloc);
  for (const Step* step : {&mixed, &long_decode}) {
    const int64_t n = step->n_tokens();
    backend_->paged_attention(
        dev(random_floats(static_cast<size_t>(n * n_head * hd), 4), {n, n_head, hd}), kp, vp,
        step->layout(bs), 0, 0.125f,
        dev(random_floats(static_cast<size_t>(n * n_head * hd), 5), {n, n_head * hd}));
  }
  backend_->synchronize();
  const CudaBackendStats& s = stats();
  const int64_t tile = cuda::paged_tile_tokens(n_head, n_head_kv);
  EXPECT_EQ(s.store_kv_calls - before.store_kv_calls, 1u);
  EXPECT_EQ(s.paged_attention_calls - before.paged_attention_calls, 2u);
  EXPECT_EQ(s.paged_decode_rows - before.paged_decode_rows, 2u);
  EXPECT_EQ(s.paged_prefill_tiles - before.paged_prefill_tiles,
            static_cast<uint64_t>((29 + tile - 1) / tile));
  EXPECT_EQ(s.paged_split_calls - before.paged_split_calls, 1u) << "the long decode ran unsplit";
}

TEST_F(CudaPagedOpsTest, BadLayoutsAreErrorsNotCrashes) {
  const int64_t bs = 4;
  BlockAlloc alloc(8, 3);
  const Step step({{6, 2}}, bs, alloc);
  const Tensor q = dev(random_floats(2 * 4 * 16, 1), {2, 4, 16});
  const Tensor out = dev(random_floats(2 * 4 * 16, 2), {2, 64});
  const Tensor kp = dev(random_floats(8 * 4 * 2 * 16, 3), {8 * 4, 2, 16});
  const Tensor vp = dev(random_floats(8 * 4 * 2 * 16, 4), {8 * 4, 2, 16});
  auto expect_error = [&](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "expected an error naming " << needle;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kInternal) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // A block id outside the pool.
  Step bad = step;
  bad.block_table[1] = 8;
  expect_error([&] { backend_->paged_attention(q, kp, vp, bad.layout(bs), 0, 0.25f, out); },
               "outside the pool of 8 blocks");
  // A position beyond the table.
  Step far = step;
  far.pos[1] = 100;
  expect_error([&] { backend_->paged_attention(q, kp, vp, far.layout(bs), 0, 0.25f, out); },
               "cuda paged_attention");
  // q rows vs positions.
  expect_error(
      [&] {
        backend_->paged_attention(dev(random_floats(4 * 16, 5), {1, 4, 16}), kp, vp,
                                  step.layout(bs), 0, 0.25f, out);
      },
      "cuda paged_attention: q");
  // A slot outside the pool, and k rows vs slots.
  const Tensor k = dev(random_floats(2 * 2 * 16, 6), {2, 2, 16});
  expect_error(
      [&] {
        backend_->store_kv(k, k, std::vector<int64_t>{0, 32}, kp, vp);
      },
      "slot 32 outside the pool of 32");
  expect_error([&] { backend_->store_kv(k, k, std::vector<int64_t>{0}, kp, vp); },
               "cuda store_kv: k");
  // Still usable: the valid step runs.
  backend_->paged_attention(q, kp, vp, step.layout(bs), 0, 0.25f, out);
  backend_->synchronize();
}

// ---- a paged decode step as a CUDA graph ----

std::string pack_tiny(const test::TempDir& tmp, int tp) {
  test::TinyModelSpec spec = test::tiny_qwen3();
  spec.dtype = DType::kBF16;
  const std::string model = (tmp.path() / "model").string();
  test::write_tiny_checkpoint(spec, model);
  PackOptions o;
  o.model_dir = model;
  o.out_dir = (tmp.path() / ("pack" + std::to_string(tp))).string();
  o.tp_size = tp;
  pack_checkpoint(o);
  return o.out_dir;
}

// One sequence's step: `ids` at positions [n_past, n_past + ids.size()) in `blocks`.
StepInput one_sequence_step(const std::vector<int32_t>& ids, int64_t n_past,
                            const std::vector<int32_t>& blocks, int64_t bs) {
  StepInput s;
  s.tokens = ids;
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t ctx = n_past + n;
  s.max_blocks = static_cast<int32_t>((ctx + bs - 1) / bs);
  s.block_table.assign(blocks.begin(), blocks.begin() + s.max_blocks);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = n_past + i;
    s.positions.push_back(static_cast<int32_t>(p));
    s.slot_mapping.push_back(blocks[static_cast<size_t>(p / bs)] * bs + p % bs);
  }
  s.seq_starts = {0, static_cast<int32_t>(n)};
  s.context_lens = {static_cast<int32_t>(ctx)};
  s.logits_rows = {static_cast<int32_t>(n - 1)};
  return s;
}

TEST(CudaPagedGraphs, PagedDecodeStepAsGraphGivesTheEagerLogits) {
  SHARDLM_REQUIRE_CUDA_DEVICE();
  test::TempDir tmp("cuda-paged-graph");
  const std::string dir = pack_tiny(tmp, 1);
  auto pack = PackReader::open(dir + "/rank-0-of-1.shardlm");
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
  constexpr int kSteps = 14;
  constexpr int64_t kBs = 4;  // the block table grows every 4 steps, inside the graphs
  const std::vector<int32_t> blocks = {11, 2, 7, 0, 13, 5, 9, 1};

  for (DType kv_dtype : {DType::kBF16, DType::kF32, DType::kF8E4M3}) {
    SCOPED_TRACE(dtype_name(kv_dtype));
    auto run = [&](bool graphs) {
      BackendOptions options;
      options.settings = {{"graphs", "1"}};  // off by default
      auto backend = make_cuda_backend(options);
      auto host = make_single_communicator();
      std::unique_ptr<Communicator> comm =
          graphs ? backend->make_communicator(*host) : make_single_communicator();
      Transformer model(*pack, *backend, *comm, 16);
      KvPool pool(*backend, model.kv_pool_shape(16, kBs, kv_dtype));
      backend->begin_forward(static_cast<int64_t>(prompt.size()));
      Tensor logits = model.step(one_sequence_step(prompt, 0, blocks, kBs), pool);
      backend->end_forward();
      int32_t next = static_cast<int32_t>(backend->max_element(logits).index);
      std::vector<std::vector<float>> out;
      int64_t n_past = static_cast<int64_t>(prompt.size());
      for (int s = 0; s < kSteps; ++s) {
        backend->begin_forward(1);
        logits = model.step(one_sequence_step({next}, n_past, blocks, kBs), pool);
        backend->end_forward();
        out.push_back(test::download(*backend, logits));
        next = static_cast<int32_t>(backend->max_element(logits).index);
        ++n_past;
      }
      const CudaBackendStats s = *cuda_backend_stats(*backend);
      EXPECT_EQ(s.graphs_enabled, graphs);
      // The first decode step runs eagerly (workspaces, staging), then graphs.
      EXPECT_EQ(s.graphs.launches, graphs ? static_cast<uint64_t>(kSteps - 1) : 0u);
      if (graphs) {
        EXPECT_GE(s.graphs.updates, 1u) << "every step re-instantiated the graph";
      }
      EXPECT_GT(s.paged_decode_rows, 0u);
      EXPECT_GT(s.paged_prefill_tiles, 0u);
      return out;
    };
    const auto eager = run(false);
    const auto graph = run(true);
    for (int s = 0; s < kSteps; ++s) EXPECT_EQ(graph[s], eager[s]) << "step " << s;
  }
}

// ---- the step engine: cuda vs cpu ----

constexpr float kRelTol = 2e-4f;        // cuda vs cpu logits, f32 KV (cuda_model_test)
constexpr float kBf16KvRelTol = 1e-2f;  // bf16 KV: neighbouring bf16 roundings (step_engine_test)

std::vector<fs::path> fixture_dirs() {
  return test::hf_fixture_dirs(SHARDLM_FIXTURES_DIR);
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logits;
};

std::vector<Outcome> run_engine(const std::string& pack, const std::string& backend, int tp,
                                DType kv, const std::vector<TokenRequest>& requests) {
  EngineOptions eo;
  eo.pack_dir = pack;
  eo.backend = backend;
  eo.n_threads = tp;
  eo.n_ctx = 256;
  eo.max_batch_tokens = 48;  // the 61-token prompt is prefilled in chunks, next to decodes
  eo.default_sequence = false;
  eo.kv_blocks = 64;
  eo.block_size = 16;
  eo.kv_dtype = kv;
  Engine engine(eo);
  StepEngine se(engine, StepEngineOptions{});
  std::vector<RequestId> ids;
  for (const TokenRequest& r : requests) ids.push_back(se.submit(r));
  se.run_to_completion();
  std::vector<Outcome> out;
  for (RequestId id : ids) {
    TokenResult r = se.take_result(id);
    out.push_back({r.tokens, r.logits});
  }
  EXPECT_EQ(se.block_manager().n_used(), 0);
  return out;
}

class CudaStepEngineTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(CudaStepEngineTest, BatchedGreedyMatchesTheCpuBackend) {
  SHARDLM_REQUIRE_CUDA_DEVICE();
  const fs::path dir = GetParam();
  if (dir.empty()) GTEST_SKIP() << "no fixtures under " << SHARDLM_FIXTURES_DIR << "/hf";
  const test::HfReference ref = test::load_hf_reference(dir);
  // Four prompts (1, 17, 61 and 9 tokens) with different budgets, so the last steps decode a
  // single sequence (captured as a graph at tp 1).
  std::vector<TokenRequest> reqs;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(ref.n_vocab - 1));
  const int lens[] = {1, 17, 61, 9};
  const int64_t budgets[] = {12, 7, 9, 16};
  for (int i = 0; i < 4; ++i) {
    TokenRequest r;
    r.prompt = ref.prompt;
    r.prompt.resize(std::min(r.prompt.size(), static_cast<size_t>(lens[i])));
    while (static_cast<int>(r.prompt.size()) < lens[i]) r.prompt.push_back(id(rng));
    r.sampling.temperature = 0;
    r.max_new_tokens = budgets[i];
    r.logits = true;
    reqs.push_back(r);
  }
  test::TempDir tmp("cuda-step-" + dir.filename().string());
  int tested = 0;
  for (int tp : {1, 2}) {
    const std::string pack = pack_at(dir, tmp.path(), tp);
    if (pack.empty()) continue;
    for (DType kv : {DType::kF32, DType::kBF16}) {
      SCOPED_TRACE("tp " + std::to_string(tp) + " kv " + dtype_name(kv));
      const auto cpu = run_engine(pack, "cpu", tp, kv, reqs);
      const auto gpu = run_engine(pack, "cuda", tp, kv, reqs);
      const float tol = (kv == DType::kF32 ? kRelTol : kBf16KvRelTol) * ref.logit_range;
      float worst = 0;
      for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(gpu[i].tokens, cpu[i].tokens) << "request " << i;
        ASSERT_EQ(gpu[i].logits.size(), cpu[i].logits.size()) << "request " << i;
        const float err =
            max_diff(gpu[i].logits.data(), cpu[i].logits.data(), cpu[i].logits.size());
        EXPECT_LE(err, tol) << "request " << i;
        worst = std::max(worst, err);
      }
      std::printf("CUDA-STEP %-34s tp %d kv %-4s max logit diff vs cpu %.3g (%.2e of range)\n",
                  dir.filename().c_str(), tp, dtype_name(kv), worst, worst / ref.logit_range);
      ++tested;
    }
  }
  EXPECT_GE(tested, 1);
}

std::vector<fs::path> params() {
  auto dirs = fixture_dirs();
  if (dirs.empty()) dirs.push_back(fs::path());
  return dirs;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaStepEngineTest, ::testing::ValuesIn(params()),
                         [](const auto& info) { return test::fixture_param_name(info.param); });

}  // namespace
}  // namespace shardlm
