// Command buffers of a real model's decode steps are recorded once and replayed: the
// transformer forward on the Vulkan backend (TP = 1, and TP = 2 with both ranks on one device)
// records every distinct segment shape in the first decode step -- one segment per step at
// TP = 1; at TP = 2 the embedding, the first and later layers' attention halves, the MLP half
// and the output -- and every later step only replays them. Replayed steps give bit-identical
// logits to a backend that re-records everything; with split-K attention (tp1_split4) they
// match the single-pass logits within f32 rounding, and replay just the same.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "formats/pack_reader.h"
#include "packer/packer.h"
#include "runtime/comm/thread_group.h"
#include "runtime/model/transformer.h"
#include "tests/runtime/test_util.h"
#include "tests/vulkan/vk_test_util.h"

namespace shardlm {
namespace {

struct RankRun {
  std::vector<std::vector<float>> logits;  // per decode step
  vk::StreamStats first_step, later_steps;
};

// Prefill `prompt`, then `steps` greedy-free decode steps feeding fixed ids.
RankRun run_rank(const PackReader& pack, VulkanBackend& b, ThreadGroup& group, int rank,
                 const std::vector<int32_t>& prompt, int steps) {
  RankRun out;
  auto host_comm = group.communicator(rank);
  auto comm = b.make_communicator(*host_comm);
  Transformer model(pack, b, *comm, 16);
  auto cache = model.make_cache(64);
  std::vector<float> host(static_cast<size_t>(model.layout().n_vocab_local));
  model.forward(prompt, *cache, false);
  b.synchronize();
  for (int s = 0; s < steps; ++s) {
    b.reset_stream_stats();
    const int32_t id = 3 + 7 * s;
    const Tensor logits = model.forward(std::span<const int32_t>(&id, 1), *cache, false);
    b.copy_to_host(host.data(), logits, host.size() * sizeof(float));
    out.logits.push_back(host);
    const vk::StreamStats& st = b.stream_stats();
    if (s == 0) {
      out.first_step = st;
    } else {
      out.later_steps.submits += st.submits;
      out.later_steps.recorded += st.recorded;
      out.later_steps.replayed += st.replayed;
    }
  }
  return out;
}

struct ReplayCase {
  int tp, splits;
};

class VulkanReplay : public ::testing::TestWithParam<ReplayCase> {};

TEST_P(VulkanReplay, DecodeStepsReplayRecordedCommandBuffers) {
  const int tp = GetParam().tp;
  {
    auto probe = test::make_test_backend();
    SHARDLM_REQUIRE_VULKAN(probe);
  }
  const std::filesystem::path fixture =
      std::filesystem::path(SHARDLM_FIXTURES_DIR) / "hf" / "qwen3_qknorm_headdim32_tied_bf16";
  test::TempDir tmp("vk-replay");
  PackOptions po;
  po.model_dir = fixture.string();
  po.out_dir = (tmp.path() / "pack").string();
  po.tp_size = tp;
  pack_checkpoint(po);
  const PackSet set = find_pack_set(po.out_dir, tp);
  const std::vector<int32_t> prompt = {280, 24, 234, 127, 102, 21};
  const int steps = 5;

  std::vector<RankRun> runs[2];  // [reuse off, reuse on][rank]
  for (int reuse = 0; reuse < 2; ++reuse) {
    std::vector<std::unique_ptr<PackReader>> packs;
    std::vector<std::unique_ptr<VulkanBackend>> be;
    for (int r = 0; r < tp; ++r) {
      packs.push_back(PackReader::open(set.rank_paths[static_cast<size_t>(r)]));
      VulkanOptions o;
      o.reuse_command_buffers = reuse == 1;
      o.attention_splits = reuse == 1 ? GetParam().splits : 1;
      be.push_back(test::make_test_backend(o));
      ASSERT_TRUE(be.back());
    }
    ThreadGroup group(tp);
    runs[reuse].resize(static_cast<size_t>(tp));
    std::vector<std::thread> threads;
    for (int r = 0; r < tp; ++r) {
      threads.emplace_back([&, r] {
        runs[reuse][static_cast<size_t>(r)] = run_rank(
            *packs[static_cast<size_t>(r)], *be[static_cast<size_t>(r)], group, r, prompt, steps);
      });
    }
    for (auto& t : threads) t.join();
  }

  const int64_t n_layer = PackReader::open(set.rank_paths[0])->config().n_layer;
  // Submissions per decode step: one at TP = 1; at TP > 1 one per collective (embedding +
  // two per layer) plus the output segment.
  const uint64_t per_step = tp == 1 ? 1 : static_cast<uint64_t>(2 * n_layer + 2);
  for (int r = 0; r < tp; ++r) {
    const RankRun& on = runs[1][static_cast<size_t>(r)];
    const RankRun& off = runs[0][static_cast<size_t>(r)];
    SCOPED_TRACE("rank " + std::to_string(r));
    EXPECT_EQ(on.first_step.submits, per_step);
    EXPECT_EQ(on.later_steps.submits, per_step * (steps - 1));
    EXPECT_EQ(on.later_steps.recorded, 0u) << "later decode steps re-recorded";
    EXPECT_EQ(on.later_steps.replayed, per_step * (steps - 1));
    EXPECT_EQ(off.later_steps.replayed, 0u);
    ASSERT_EQ(on.logits.size(), off.logits.size());
    for (size_t s = 0; s < on.logits.size(); ++s) {
      if (GetParam().splits == 1) {
        EXPECT_EQ(on.logits[s], off.logits[s]) << s;
      } else {
        const float scale = test::max_abs(off.logits[s].data(), off.logits[s].size());
        EXPECT_LE(
            test::max_abs_diff(on.logits[s].data(), off.logits[s].data(), off.logits[s].size()),
            1e-5f * scale)
            << s;
      }
    }
    std::printf(
        "VULKAN replay tp %d splits %d rank %d: first decode step %llu submissions, %llu recorded; "
        "next %d "
        "steps %llu submissions, %llu recorded, %llu replayed\n",
        tp, GetParam().splits, r, static_cast<unsigned long long>(on.first_step.submits),
        static_cast<unsigned long long>(on.first_step.recorded), steps - 1,
        static_cast<unsigned long long>(on.later_steps.submits),
        static_cast<unsigned long long>(on.later_steps.recorded),
        static_cast<unsigned long long>(on.later_steps.replayed));
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, VulkanReplay,
                         ::testing::Values(ReplayCase{1, 1}, ReplayCase{2, 1}, ReplayCase{1, 4}),
                         [](const auto& info) {
                           return "tp" + std::to_string(info.param.tp) +
                                  (info.param.splits > 1
                                       ? "_split" + std::to_string(info.param.splits)
                                       : std::string());
                         });

}  // namespace
}  // namespace shardlm
