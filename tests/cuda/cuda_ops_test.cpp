// What the cuda backend promises beyond op results: which kernels serve which token counts
// (GEMV / cuBLAS, decode / prefill attention), the residual add fused into the next RMSNorm,
// device-side Gumbel sampling against the host's noise, bad shapes as errors. Skips without a
// GPU. Every op against its kernels/ref twin (decode and prefill paths, both RMSNorm launch
// shapes, inline and uploaded ids / positions, every weight dtype):
// tests/ops/backend_ops_test.cpp.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gumbel.h"
#include "kernels/ref/ref_ops.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "runtime/core/status.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/runtime/test_util.h"

namespace shardlm {
namespace {

using test::download;
using test::encode;
using test::max_abs;
using test::max_abs_diff;
using test::random_floats;
using test::upload;

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHARDLM_REQUIRE_CUDA_DEVICE();
    backend_ = make_cuda_backend(BackendOptions{});
  }
  // Keeps every device buffer of a test alive until the test ends.
  Tensor dev(const std::vector<float>& v, std::initializer_list<int64_t> shape) {
    owners_.emplace_back();
    return upload(*backend_, v, shape, owners_.back());
  }
  Tensor dev_raw(const std::vector<uint8_t>& bytes, DType dtype,
                 std::initializer_list<int64_t> shape) {
    owners_.emplace_back();
    Tensor t = backend_->allocate_tensor(dtype, shape, MemoryKind::kWeights, owners_.back());
    backend_->copy_from_host(t, bytes.data(), bytes.size());
    return t;
  }
  Tensor zeros(std::initializer_list<int64_t> shape) {
    owners_.emplace_back();
    return backend_->allocate_tensor(DType::kF32, shape, MemoryKind::kScratch, owners_.back());
  }

  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<DeviceBuffer>> owners_;
};

// Which kernels serve which token counts (their results on these and many more shapes:
// backend_ops_test): matmul's GEMV up to cuda::kDecodeMaxTokens tokens, cuBLAS above;
// attention's decode kernel up to kDecodeMaxTokens tokens, the prefill kernel above.
TEST_F(CudaOpsTest, LaunchPathsFollowTheTokenCount) {
  const CudaBackendStats before = *cuda_backend_stats(*backend_);
  const int64_t n_in = 64, n_out = 32, n_head = 4, n_head_kv = 2, head_dim = 32, n_kv = 20;
  const Tensor w =
      dev_raw(encode(random_floats(static_cast<size_t>(n_out * n_in), 1), DType::kBF16),
              DType::kBF16, {n_out, n_in});
  const Tensor k = dev(random_floats(static_cast<size_t>(n_kv * n_head_kv * head_dim), 2),
                       {n_kv, n_head_kv, head_dim});
  for (int64_t n_tokens : {int64_t{1}, cuda::kDecodeMaxTokens, cuda::kDecodeMaxTokens + 1}) {
    backend_->matmul(dev(random_floats(static_cast<size_t>(n_tokens * n_in), 3), {n_tokens, n_in}),
                     w, Tensor{}, zeros({n_tokens, n_out}));
    std::vector<int32_t> pos(static_cast<size_t>(n_tokens));
    std::iota(pos.begin(), pos.end(), static_cast<int32_t>(n_kv - n_tokens));
    backend_->attention(dev(random_floats(static_cast<size_t>(n_tokens * n_head * head_dim), 4),
                            {n_tokens, n_head, head_dim}),
                        k, k, pos, 0, 0.2f, zeros({n_tokens, n_head * head_dim}));
  }
  backend_->synchronize();
  const CudaBackendStats& s = *cuda_backend_stats(*backend_);
  EXPECT_EQ(s.gemv_calls - before.gemv_calls, 2u);
  EXPECT_EQ(s.gemm_calls - before.gemm_calls, 1u);
  EXPECT_EQ(s.attention_decode_calls - before.attention_decode_calls, 2u);
  EXPECT_EQ(s.attention_prefill_calls - before.attention_prefill_calls, 1u);
}

TEST_F(CudaOpsTest, ResidualAddIsFusedIntoTheNextNormOrFlushed) {
  // 512 and 5120: rows held in registers (both register-count variants); 4102: the plain loop.
  const int64_t n_rows = 4, n = 512;
  for (int64_t width : {n, int64_t{5120}, int64_t{4102}}) {
    const auto x = random_floats(static_cast<size_t>(n_rows * width), 7);
    const auto r = random_floats(static_cast<size_t>(n_rows * width), 8);
    const auto w = random_floats(static_cast<size_t>(width), 9);
    std::vector<float> sum(x.size()), want(x.size());
    for (size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + r[i];
    ref::rms_norm(sum.data(), w.data(), n_rows, width, 1e-5f, want.data());

    // Every operand is uploaded first: an upload is an op of its own and flushes a pending add.
    const Tensor tx = dev(x, {n_rows, width});
    const Tensor tr = dev(r, {n_rows, width});
    const Tensor tw = dev(w, {width});
    const Tensor out = zeros({n_rows, width});
    const uint64_t fused_before = cuda_backend_stats(*backend_)->fused_add_norms;
    backend_->add(tx, tr);
    backend_->rms_norm(tx, tw, 1e-5f, out);  // x += r inside the norm kernel
    EXPECT_EQ(cuda_backend_stats(*backend_)->fused_add_norms, fused_before + 1) << width;
    EXPECT_EQ(download(*backend_, tx), sum) << width;  // the residual stream itself was updated
    const auto got = download(*backend_, out);
    EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()),
              2e-6f * max_abs(want.data(), want.size()))
        << width;
  }

  const auto x = random_floats(static_cast<size_t>(n_rows * n), 7);
  const auto r = random_floats(static_cast<size_t>(n_rows * n), 8);
  const auto w = random_floats(static_cast<size_t>(n), 9);
  std::vector<float> sum(x.size());
  for (size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + r[i];
  const Tensor tx = dev(x, {n_rows, n});
  const Tensor tr = dev(r, {n_rows, n});
  const Tensor tw = dev(w, {n});
  const Tensor out = zeros({n_rows, n});

  // An add followed by anything else runs on its own before that op.
  const Tensor ty = dev(x, {n_rows, n});
  backend_->add(ty, dev(r, {n_rows, n}));
  EXPECT_EQ(download(*backend_, ty), sum);
  const Tensor tz = dev(x, {n_rows, n});
  const uint64_t fused_mid = cuda_backend_stats(*backend_)->fused_add_norms;
  backend_->add(tz, tr);
  backend_->rms_norm(tx, tw, 1e-5f, out);  // a different tensor: no fusion
  EXPECT_EQ(cuda_backend_stats(*backend_)->fused_add_norms, fused_mid);
  EXPECT_EQ(download(*backend_, tz), sum);
}

// Device-side sampling: argmax of x / T + Gumbel(seed, offset + i), against the same noise
// computed on the host (rows whose top two perturbed values are too close are not compared).
TEST_F(CudaOpsTest, GumbelSamplingMatchesHostNoise) {
  const int64_t n_rows = 16, n = 5000, offset = 777;
  const float temperature = 0.7f;
  const auto x = random_floats(static_cast<size_t>(n_rows * n), 14, 3.0f);
  const Tensor tx = dev(x, {n_rows, n});
  const Tensor ws = zeros({static_cast<int64_t>(cuda::argmax_workspace_bytes(n_rows, n) / 4 + 1)});
  const Tensor vals = zeros({n_rows});
  const Tensor idx = zeros({2 * n_rows});  // int64 storage
  backend_->synchronize();                 // the inputs were written on the backend's stream
  cuda::argmax_rows(tx.as<float>(), n_rows, n, temperature, 99, offset, ws.data, vals.as<float>(),
                    reinterpret_cast<int64_t*>(idx.data), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<int64_t> got(static_cast<size_t>(n_rows));
  backend_->copy_to_host(got.data(), idx, got.size() * sizeof(int64_t));
  int compared = 0;
  for (int64_t r = 0; r < n_rows; ++r) {
    float best = -INFINITY, second = -INFINITY;
    int64_t arg = -1;
    for (int64_t i = 0; i < n; ++i) {
      const float v =
          x[static_cast<size_t>(r * n + i)] / temperature + cuda::gumbel_noise(99, offset + i);
      if (v > best) {
        second = best;
        best = v;
        arg = i;
      } else if (v > second) {
        second = v;
      }
    }
    if (best - second < 1e-4f) continue;
    ++compared;
    EXPECT_EQ(got[static_cast<size_t>(r)], arg) << "row " << r;
  }
  EXPECT_GE(compared, 12);
}

TEST_F(CudaOpsTest, BadShapesAreErrorsNotCrashes) {
  const Tensor x = zeros({2, 8});
  const Tensor w = zeros({4, 7});
  try {
    backend_->matmul(x, w, Tensor{}, zeros({2, 4}));
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("cuda matmul"), std::string::npos) << e.what();
  }
  const Tensor q = zeros({1, 2, 300});
  try {
    backend_->attention(q, zeros({4, 2, 300}), zeros({4, 2, 300}), std::vector<int32_t>{3}, 0, 1.0f,
                        zeros({1, 600}));
    FAIL() << "expected a head_dim error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 300"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace shardlm
