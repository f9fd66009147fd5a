// The step engine over ranks as processes, run under mpirun -n 2: rank 0 drives an Engine whose
// other rank is process 1 (serve_steps), schedules eight requests of different lengths together,
// and every request's tokens equal its solo run on an in-process engine of the same pack; with
// the rank-ordered reduction the logits are bit-identical to the same batch run in-process. A
// custom main initializes MPI; rank 0 packs the fixture and tells the others where.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "packer/packer.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/step_engine.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {

std::string g_pack;  // the tp-2 pack every process opens

std::unique_ptr<Engine> open_engine(std::shared_ptr<Communicator> comm) {
  EngineOptions eo;
  eo.pack_dir = g_pack;
  eo.n_threads = comm ? 1 : 2;
  eo.n_ctx = 128;
  eo.max_batch_tokens = 32;  // prompts run in several chunks
  eo.kv_blocks = 64;
  eo.block_size = 8;
  eo.kv_dtype = DType::kF32;
  eo.default_sequence = false;
  eo.process_comm = std::move(comm);
  return std::make_unique<Engine>(eo);
}

std::vector<TokenRequest> requests() {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> id(1, 200);
  std::vector<TokenRequest> out;
  for (int len : {3, 17, 40, 1, 25, 9, 33, 12}) {
    TokenRequest r;
    for (int i = 0; i < len; ++i) r.prompt.push_back(id(rng));
    r.sampling.temperature = 0;
    r.max_new_tokens = 10;
    r.logits = true;
    out.push_back(r);
  }
  return out;
}

std::vector<TokenResult> run_all(Engine& e, const std::vector<TokenRequest>& reqs, bool together) {
  std::vector<TokenResult> out;
  StepEngineOptions so;
  so.prefix_cache = false;
  StepEngine se(e, so);
  if (together) {
    std::vector<RequestId> ids;
    for (const auto& r : reqs) ids.push_back(se.submit(r));
    se.run_to_completion();
    for (RequestId id : ids) out.push_back(se.take_result(id));
  } else {
    for (const auto& r : reqs) {
      const RequestId id = se.submit(r);
      se.run_to_completion();
      out.push_back(se.take_result(id));
    }
  }
  return out;
}

void check_against_in_process(MpiReduction reduction) {
  std::shared_ptr<Communicator> comm = make_mpi_communicator(reduction);
  auto engine = open_engine(comm);
  if (!engine->drives()) {
    engine->serve_steps();
    return;
  }
  const auto reqs = requests();
  std::vector<TokenResult> batched = run_all(*engine, reqs, true);
  engine.reset();  // releases the other process
  auto local = open_engine(nullptr);
  const std::vector<TokenResult> solo = run_all(*local, reqs, false);
  const std::vector<TokenResult> local_batched = run_all(*local, reqs, true);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(batched[i].tokens, solo[i].tokens) << "request " << i;
    ASSERT_EQ(batched[i].logits.size(), local_batched[i].logits.size());
    if (reduction == MpiReduction::kRankOrdered) {
      EXPECT_EQ(0, std::memcmp(batched[i].logits.data(), local_batched[i].logits.data(),
                               batched[i].logits.size() * sizeof(float)))
          << "request " << i << ": rank-ordered logits differ from the in-process bits";
    }
  }
}

TEST(MpiEngine, BatchedRequestsEqualTheirSoloRunsFastReduction) {
  check_against_in_process(MpiReduction::kFast);
}

TEST(MpiEngine, BatchedRequestsAreBitIdenticalToInProcessWithRankOrderedReduction) {
  check_against_in_process(MpiReduction::kRankOrdered);
}

}  // namespace
}  // namespace shardlm

int main(int argc, char** argv) {
  shardlm::MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // Rank 0 packs a fixture at tp 2 and broadcasts the directory.
  std::unique_ptr<shardlm::testing::TempDir> tmp;
  char dir[4096] = {};
  if (mpi.rank() == 0) {
    tmp = std::make_unique<shardlm::testing::TempDir>();
    shardlm::PackOptions o;
    o.model_dir = std::string(SHARDLM_FIXTURES_DIR) + "/hf/qwen3_mqa_f32";
    o.out_dir = (*tmp) / "pack";
    o.tp_size = 2;
    shardlm::pack_checkpoint(o);
    std::snprintf(dir, sizeof dir, "%s", o.out_dir.c_str());
  }
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  shardlm::g_pack = dir;
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int mine = RUN_ALL_TESTS();
  int any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);  // rank 0's temp dir outlives every reader
  return any;
}
