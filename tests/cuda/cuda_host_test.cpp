// The parts of the CUDA backend that run without a GPU, so CI (nvcc, no GPU) tests them for
// real: rank -> device assignment and the communicator choice, the memory budget and its
// messages, the attention launch plan, the Gumbel noise, the Backend seams' host defaults
// (cpu backend), and a clear error (never a crash) when "cuda" is asked for on a machine
// without a usable GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gumbel.h"
#include "kernels/ref/ref_ops.h"
#include "packer/packer.h"
#include "runtime/backend/cuda/device_assignment.h"
#include "runtime/backend/cuda/memory_budget.h"
#include "runtime/backend/registry.h"
#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/runtime/test_util.h"
#include "tests/runtime/tiny_checkpoint.h"

namespace shardlm {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

std::string message_of(const std::function<void()>& fn, StatusCode expected) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected an Error";
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(CudaDeviceAssignment, RoundRobinAndExplicitLists) {
  EXPECT_EQ(assign_devices(4, {}, 4), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(assign_devices(4, {}, 1), (std::vector<int>{0, 0, 0, 0}));  // TP=4 on one GPU
  EXPECT_EQ(assign_devices(4, {}, 2), (std::vector<int>{0, 1, 0, 1}));
  EXPECT_EQ(assign_devices(3, {2, 5}, 8), (std::vector<int>{2, 5, 2}));
  EXPECT_EQ(ranks_on_same_device({0, 0, 0, 0}, 2), 4);
  EXPECT_EQ(ranks_on_same_device({0, 1, 0, 1}, 1), 2);
  EXPECT_EQ(ranks_on_same_device({3}, 0), 1);
  const std::string m = message_of([] { assign_devices(2, {0, 7}, 2); }, StatusCode::kInvalidArg);
  EXPECT_TRUE(contains(m, "device 7 does not exist")) << m;
  message_of([] { assign_devices(1, {}, 0); }, StatusCode::kBackend);
}

TEST(CudaDeviceAssignment, CommunicatorChoice) {
  EXPECT_EQ(choose_comm_kind({0}, true), CudaCommKind::kSingle);
  EXPECT_EQ(choose_comm_kind({0, 1, 2, 3}, true), CudaCommKind::kNccl);
  EXPECT_EQ(choose_comm_kind({0, 1}, false), CudaCommKind::kShared);  // no NCCL built
  EXPECT_EQ(choose_comm_kind({0, 0}, true), CudaCommKind::kShared);   // NCCL refuses sharing
  EXPECT_EQ(choose_comm_kind({0, 1, 0, 1}, true), CudaCommKind::kShared);
  EXPECT_STREQ(comm_kind_name(CudaCommKind::kShared), "shared-device");
}

TEST(CudaMemoryBudget, BudgetIsFractionOfTotalSharedByRanks) {
  DeviceMemoryBudget b("cuda device 0", 80 * kGiB, 0.9, 4);
  EXPECT_EQ(b.budget(), static_cast<uint64_t>(80.0 * 0.9 / 4 * kGiB));
  b.reserve(10 * kGiB, "weights");
  b.reserve(8 * kGiB, "scratch");
  EXPECT_EQ(b.used(), 18 * kGiB);
  const std::string m = message_of([&] { b.reserve(1 * kGiB, "KV cache"); }, StatusCode::kOom);
  // Both numbers (what it would reach, the budget) and how the budget is made.
  EXPECT_TRUE(contains(m, "cuda device 0")) << m;
  EXPECT_TRUE(contains(m, "1.00 GiB for KV cache")) << m;
  EXPECT_TRUE(contains(m, "19.00 GiB")) << m;
  EXPECT_TRUE(contains(m, "18.00 GiB")) << m;  // the budget: 80 x 0.9 / 4
  EXPECT_TRUE(contains(m, "/ 4 ranks on this device")) << m;
  EXPECT_EQ(b.used(), 18 * kGiB);  // a refused reservation changes nothing
  b.release(8 * kGiB);
  b.reserve(1 * kGiB, "KV cache");
  EXPECT_EQ(b.peak(), 18 * kGiB);
}

TEST(CudaMemoryBudget, PlanCheckedAgainstBudgetAndFreeMemory) {
  DeviceMemoryBudget b("cuda device 1", 80 * kGiB, 0.85, 1);
  b.check_plan(0, 0);  // no plan: nothing to check
  b.check_plan(60 * kGiB, 70 * kGiB);
  std::string m = message_of([&] { b.check_plan(70 * kGiB, 79 * kGiB); }, StatusCode::kOom);
  EXPECT_TRUE(contains(m, "needs 70.00 GiB")) << m;
  EXPECT_TRUE(contains(m, "budget is 68.00 GiB")) << m;
  EXPECT_TRUE(contains(m, "80.00 GiB x 0.85")) << m;
  EXPECT_TRUE(contains(m, "--mem-fraction")) << m;
  m = message_of([&] { b.check_plan(60 * kGiB, 20 * kGiB); }, StatusCode::kOom);
  EXPECT_TRUE(contains(m, "only 20.00 GiB of 80.00 GiB is free")) << m;
  DeviceMemoryBudget shared("cuda device 0", 80 * kGiB, 0.9, 2);
  m = message_of([&] { shared.check_plan(30 * kGiB, 50 * kGiB); }, StatusCode::kOom);
  EXPECT_TRUE(contains(m, "25.00 GiB per rank for 2 ranks")) << m;
  message_of([] { DeviceMemoryBudget("x", kGiB, 1.5, 1); }, StatusCode::kInvalidArg);
  const std::string f = b.malloc_failure(2 * kGiB, "weights", kGiB);
  EXPECT_TRUE(contains(f, "2.00 GiB for weights")) << f;
  EXPECT_TRUE(contains(f, "1.00 GiB free of 80.00 GiB")) << f;
}

TEST(CudaAttentionPlan, DecodeSplitsCoverTheDeviceWithoutTinySplits) {
  using cuda::plan_attention;
  // Prefill beyond kDecodeMaxTokens.
  EXPECT_FALSE(plan_attention(cuda::kDecodeMaxTokens + 1, 32, 8, 4096, 132).decode);
  // Llama-3-8B decode at 4096 keys: 8 kv-head blocks, so 33 splits reach 2 waves on 132 SMs.
  auto p = plan_attention(1, 32, 8, 4096, 132);
  EXPECT_TRUE(p.decode);
  EXPECT_EQ(p.n_splits, 33);
  // Short contexts keep at least 32 keys per split.
  EXPECT_EQ(plan_attention(1, 32, 8, 50, 132).n_splits, 1);
  EXPECT_EQ(plan_attention(1, 32, 8, 100, 132).n_splits, 3);
  EXPECT_EQ(plan_attention(1, 32, 8, 640, 132).n_splits, 20);
  // Many blocks already: one split.
  EXPECT_EQ(plan_attention(8, 64, 64, 100000, 16).n_splits, 1);
  // Never more than 128.
  EXPECT_EQ(plan_attention(1, 1, 1, 1 << 20, 1000).n_splits, 128);
  // A group of 12 query heads takes 2 head chunks of <= 8.
  EXPECT_EQ(plan_attention(1, 24, 2, 1 << 20, 4).n_splits, 2);
}

TEST(CudaGumbel, UniformInOpenIntervalAndDeterministic) {
  std::set<float> seen;
  double sum = 0;
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) {
    const float u = cuda::uniform01(42, i);
    ASSERT_GT(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    seen.insert(u);
  }
  EXPECT_NEAR(sum / kN, 0.5, 0.01);
  EXPECT_GT(seen.size(), static_cast<size_t>(kN * 0.99));
  EXPECT_EQ(cuda::gumbel_noise(7, 123), cuda::gumbel_noise(7, 123));
  EXPECT_NE(cuda::gumbel_noise(7, 123), cuda::gumbel_noise(8, 123));
  // Mean of the standard Gumbel distribution is the Euler-Mascheroni constant.
  double g = 0;
  for (int i = 0; i < kN; ++i) g += cuda::gumbel_noise(3, i);
  EXPECT_NEAR(g / kN, 0.5772, 0.03);
}

// The seams every backend inherits (backend.h): the cpu backend uses the host defaults.
TEST(BackendSeams, HostDefaultsOnTheCpuBackend) {
  auto cpu = builtin_backends().create("cpu", {});
  auto host = make_single_communicator();
  EXPECT_EQ(cpu->make_communicator(*host), nullptr);  // the engine's host communicator serves
  EXPECT_EQ(cpu->memory_space(), MemorySpace::kHost);
  cpu->begin_forward(1);
  cpu->end_forward();
  for (int64_t n : {1, 7, 300}) {
    const std::vector<float> x = test::random_floats(static_cast<size_t>(n), 11 + n);
    const Tensor t(x.data(), DType::kF32, {n});
    const Backend::MaxElement m = cpu->max_element(t);
    EXPECT_EQ(m.index, ref::argmax(x.data(), n));
    EXPECT_EQ(m.value, x[static_cast<size_t>(m.index)]);
  }
  const std::vector<float> ties = {1, 3, 3, 2};
  EXPECT_EQ(cpu->max_element(Tensor(ties.data(), DType::kF32, {4})).index, 1);
}

TEST(CudaBackendWithoutGpu, ClearErrorNotACrash) {
  std::string why;
  if (test::have_cuda_device(&why)) GTEST_SKIP() << "a CUDA device is present";
  BackendRegistry registry = builtin_backends();
  ASSERT_TRUE(registry.has("cuda"));
  const std::string m = message_of([&] { registry.create("cuda", {}); }, StatusCode::kBackend);
  EXPECT_TRUE(contains(m, "cuda backend: no usable CUDA device")) << m;
  EXPECT_TRUE(contains(m, why)) << m << " vs " << why;
}

TEST(CudaBackendWithoutGpu, EngineRefusesCleanlyAndCpuStillWorks) {
  if (test::have_cuda_device()) GTEST_SKIP() << "a CUDA device is present";
  test::TempDir tmp("cuda-nogpu");
  test::TinyModelSpec spec = test::tiny_llama();
  const std::string model = (tmp.path() / "model").string();
  test::write_tiny_checkpoint(spec, model);
  PackOptions po;
  po.model_dir = model;
  po.out_dir = (tmp.path() / "pack").string();
  po.tp_size = 2;
  pack_checkpoint(po);
  EngineOptions eo;
  eo.pack_dir = po.out_dir;
  eo.backend = "cuda";
  eo.n_threads = 2;
  const std::string m = message_of([&] { Engine e(eo); }, StatusCode::kBackend);
  EXPECT_TRUE(contains(m, "no usable CUDA device")) << m;
  eo.backend = "cpu";
  Engine cpu(eo);
  EXPECT_EQ(cpu.eval(std::vector<int32_t>{1, 2, 3}, false).size(),
            static_cast<size_t>(spec.n_vocab));
}

}  // namespace
}  // namespace shardlm
