// CUDA communicators with ranks as threads of one process, each with its own cuda backend:
// the device-sharing communicator (TP = 2 and 4 on ONE GPU) and NCCL (one GPU per rank, when
// the machine has enough GPUs and NCCL is built), including the unique-id bootstrap used for
// multi-process runs. Collectives on device memory must give every rank the same bits (the
// rank-ordered sum), host memory must keep working (the engine gathers on the host), and a
// failing rank must not leave the others hanging. Skips without a GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/runtime/test_util.h"
#ifdef SHARDLM_HAVE_NCCL
#include "runtime/comm/nccl_communicator.h"
#endif

namespace shardlm {
namespace {

using test::download;
using test::random_floats;
using test::upload;

struct Ranks {
  explicit Ranks(int n, std::vector<int> devices) : group(n), threads(n, &group) {
    backends.resize(static_cast<size_t>(n));
    comms.resize(static_cast<size_t>(n));
    hosts.resize(static_cast<size_t>(n));
    threads.run([&](int r) {
      BackendOptions o;
      o.rank = r;
      o.n_ranks = n;
      o.devices = devices;
      backends[static_cast<size_t>(r)] = make_cuda_backend(o);
      hosts[static_cast<size_t>(r)] = group.communicator(r);
      comms[static_cast<size_t>(r)] =
          backends[static_cast<size_t>(r)]->make_communicator(*hosts[static_cast<size_t>(r)]);
    });
  }
  ~Ranks() {
    threads.run([&](int r) {  // comm before backend, each on its own thread
      comms[static_cast<size_t>(r)].reset();
      backends[static_cast<size_t>(r)].reset();
    });
  }
  ThreadGroup group;
  RankThreads threads;
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<std::unique_ptr<Communicator>> hosts;  // outlive comms
  std::vector<std::unique_ptr<Communicator>> comms;
};

// The sum every rank must get: rank-ordered f32 additions.
std::vector<float> ordered_sum(const std::vector<std::vector<float>>& per_rank) {
  std::vector<float> s = per_rank[0];
  for (size_t r = 1; r < per_rank.size(); ++r) {
    for (size_t i = 0; i < s.size(); ++i) s[i] += per_rank[r][i];
  }
  return s;
}

void check_collectives(Ranks& ranks, const char* want_comm) {
  const int n = ranks.group.size();
  const int64_t count = 4096 + 3;
  std::vector<std::vector<float>> inputs;
  for (int r = 0; r < n; ++r) inputs.push_back(random_floats(count, 100 + r));
  const std::vector<float> want = ordered_sum(inputs);
  std::vector<std::vector<float>> results(static_cast<size_t>(n));
  std::vector<std::vector<float>> gathered(static_cast<size_t>(n));
  std::vector<std::vector<float>> bcast(static_cast<size_t>(n));
  std::vector<std::vector<float>> host_sum(static_cast<size_t>(n));
  ranks.threads.run([&](int r) {
    Backend& b = *ranks.backends[static_cast<size_t>(r)];
    Communicator& c = *ranks.comms[static_cast<size_t>(r)];
    EXPECT_STREQ(cuda_backend_stats(b)->comm.c_str(), want_comm);
    std::unique_ptr<DeviceBuffer> o1, o2, o3;
    // Twice on the same buffer: the second reduction must see the first one's result.
    const Tensor t = upload(b, inputs[static_cast<size_t>(r)], {count}, o1);
    EXPECT_EQ(t.space, MemorySpace::kDevice);
    c.all_reduce_sum(t.as<float>(), count, t.space);
    c.all_reduce_sum(t.as<float>(), count, t.space);
    results[static_cast<size_t>(r)] = download(b, t);
    // all_gather of different sizes (rank r sends r + 1 values).
    std::vector<float> mine(static_cast<size_t>(r + 1), static_cast<float>(r) + 0.5f);
    const Tensor s = upload(b, mine, {r + 1}, o2);
    const int64_t total = n * (n + 1) / 2;
    const Tensor g = b.allocate_tensor(DType::kF32, {total}, MemoryKind::kScratch, o3);
    c.all_gather(s.data, s.nbytes(), g.data, g.nbytes(), MemorySpace::kDevice);
    gathered[static_cast<size_t>(r)] = download(b, g);
    // broadcast from the last rank, device memory.
    std::unique_ptr<DeviceBuffer> o4;
    const Tensor bt = upload(b, inputs[static_cast<size_t>(r)], {count}, o4);
    c.broadcast(bt.data, bt.nbytes(), n - 1, bt.space);
    bcast[static_cast<size_t>(r)] = download(b, bt);
    // Host memory still works (it goes to the group's host communicator).
    host_sum[static_cast<size_t>(r)] = inputs[static_cast<size_t>(r)];
    c.all_reduce_sum(host_sum[static_cast<size_t>(r)].data(), count);
    c.barrier();
  });
  // After the first reduction every rank holds `want`; the second sums n copies of it.
  const std::vector<float> twice = ordered_sum(std::vector<std::vector<float>>(n, want));
  std::vector<float> gather_want;
  for (int r = 0; r < n; ++r) gather_want.insert(gather_want.end(), r + 1, r + 0.5f);
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(results[static_cast<size_t>(r)], twice) << "rank " << r;
    EXPECT_EQ(gathered[static_cast<size_t>(r)], gather_want) << "rank " << r;
    EXPECT_EQ(bcast[static_cast<size_t>(r)], inputs[static_cast<size_t>(n - 1)]) << "rank " << r;
    EXPECT_EQ(host_sum[static_cast<size_t>(r)], host_sum[0]) << "rank " << r;
  }
}

TEST(CudaSharedCommunicator, TwoAndFourRanksOnOneGpu) {
  SHARDLM_REQUIRE_CUDA_DEVICE();
  for (int n : {2, 4}) {
    SCOPED_TRACE(std::to_string(n) + " ranks");
    Ranks ranks(n, {0});  // every rank on device 0
    check_collectives(ranks, "shared-device");
  }
}

TEST(CudaSharedCommunicator, FailingRankDoesNotHangTheOthers) {
  SHARDLM_REQUIRE_CUDA_DEVICE();
  Ranks ranks(2, {0});
  try {
    ranks.threads.run([&](int r) {
      if (r == 1) fail(StatusCode::kBackend, "rank 1 gives up");
      std::unique_ptr<DeviceBuffer> o;
      const Tensor t = upload(*ranks.backends[0], std::vector<float>(64, 1.0f), {64}, o);
      ranks.comms[0]->all_reduce_sum(t.as<float>(), 64, t.space);
    });
    FAIL() << "expected the rank's error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kBackend) << e.what();
  }
}

TEST(CudaNcclCommunicator, OneGpuPerRank) {
  SHARDLM_REQUIRE_CUDA_DEVICE();
#ifndef SHARDLM_HAVE_NCCL
  GTEST_SKIP() << "built without NCCL";
#else
  const int n_gpus = cuda_device_count();
  if (n_gpus < 2) GTEST_SKIP() << "NCCL needs 2 GPUs, this machine has " << n_gpus;
  for (int n : {2, 4}) {
    if (n > n_gpus) break;
    SCOPED_TRACE(std::to_string(n) + " ranks");
    std::vector<int> devices(static_cast<size_t>(n));
    std::iota(devices.begin(), devices.end(), 0);
    Ranks ranks(n, devices);
    check_collectives(ranks, "nccl");
  }
#endif
}

TEST(CudaNcclCommunicator, UniqueIdBootstrap) {
  SHARDLM_REQUIRE_CUDA_DEVICE();
#ifndef SHARDLM_HAVE_NCCL
  GTEST_SKIP() << "built without NCCL";
#else
  if (cuda_device_count() < 2) GTEST_SKIP() << "NCCL needs 2 GPUs";
  // What two processes would do, with the id handed over by hand.
  const NcclId id = nccl_unique_id();
  ThreadGroup group(2);
  RankThreads threads(2, &group);
  std::vector<float> out[2];
  threads.run([&](int r) {
    BackendOptions o;
    o.rank = r;
    o.n_ranks = 2;
    auto backend = make_cuda_backend(o);
    std::unique_ptr<DeviceBuffer> buf;
    const Tensor t =
        upload(*backend, std::vector<float>(1000, static_cast<float>(r + 1)), {1000}, buf);
    backend->synchronize();
    CudaCommContext ctx;
    ctx.device = r;
    ctx.stream = nullptr;  // legacy stream: ordered after the synchronize above
    auto comm = make_nccl_communicator(id, r, 2, ctx);
    comm->all_reduce_sum(t.as<float>(), 1000, t.space);
    cudaStreamSynchronize(nullptr);
    out[r] = download(*backend, t);
    comm.reset();
  });
  EXPECT_EQ(out[0], std::vector<float>(1000, 3.0f));
  EXPECT_EQ(out[1], out[0]);
#endif
}

}  // namespace
}  // namespace shardlm
