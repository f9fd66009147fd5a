// Every cuda backend op against its kernels/ref twin on random inputs (never zeros), through
// the Backend interface (so the shape checks, uploads and launch choices are exercised too):
// the decode and prefill paths of matmul and attention, both RMSNorm launch shapes and the
// fused residual add, inline (<= 8) and uploaded ids/positions, every weight dtype.
// Tolerances are per dtype and per accumulated term (see per_term_tol). Skips without a GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

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

// Error allowed per accumulated product |x||w| <= 1, by weight dtype and path.
//   GEMV (decode): weights widened exactly, f32 accumulation in another order than ref.
//   GEMM (prefill, cuBLAS): f32 -> f32 GEMM (no TF32); 16-bit -> x = hi + lo in the weight's
//   type, |x - hi - lo| <= 2^-18 |x| (bf16) or 2^-24 |x| plus f16 subnormal steps.
float per_term_tol(DType d, bool gemm) {
  if (!gemm || d == DType::kF32) return 2e-7f;
  return d == DType::kBF16 ? 6e-6f : 4e-7f;
}

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

TEST_F(CudaOpsTest, MatmulDecodeAndPrefillPathsMatchRef) {
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    // n_tokens <= 8: GEMV (1, 2, 3, 5, 8 cover every template); above: cuBLAS.
    for (int64_t n_tokens : {1, 2, 3, 5, 8, 9, 33}) {
      for (auto [n_in, n_out] : {std::pair<int64_t, int64_t>{67, 45},  // unaligned: scalar loop
                                 {128, 200},
                                 {1024, 72},  // 16-byte loads, 4 in flight
                                 {16, 1}}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + " n_tokens " + std::to_string(n_tokens) +
                     " n_in " + std::to_string(n_in) + " n_out " + std::to_string(n_out));
        const auto x = random_floats(static_cast<size_t>(n_tokens * n_in), 1);
        const auto wf = random_floats(static_cast<size_t>(n_out * n_in), 2);
        const auto w = encode(wf, dt);
        const auto bias = random_floats(static_cast<size_t>(n_out), 3);
        for (bool with_bias : {false, true}) {
          std::vector<float> y_ref(static_cast<size_t>(n_tokens * n_out));
          ref::matmul(x.data(), n_tokens, n_in, w.data(), dt, n_out,
                      with_bias ? bias.data() : nullptr, y_ref.data());
          const Tensor y = zeros({n_tokens, n_out});
          backend_->matmul(dev(x, {n_tokens, n_in}), dev_raw(w, dt, {n_out, n_in}),
                           with_bias ? dev(bias, {n_out}) : Tensor{}, y);
          const auto got = download(*backend_, y);
          const bool gemm = n_tokens > cuda::kDecodeMaxTokens;
          EXPECT_LE(max_abs_diff(got.data(), y_ref.data(), got.size()),
                    per_term_tol(dt, gemm) * static_cast<float>(n_in) + 1e-6f);
        }
      }
    }
  }
  const CudaBackendStats* s = cuda_backend_stats(*backend_);
  ASSERT_NE(s, nullptr);
  EXPECT_GT(s->gemv_calls, 0u);
  EXPECT_GT(s->gemm_calls, 0u);
}

TEST_F(CudaOpsTest, EmbedInlineAndUploadedIdsWithOutOfShardRows) {
  const int64_t n_vocab_local = 50, n_embd = 72, vocab_start = 100;
  const auto table_f = random_floats(static_cast<size_t>(n_vocab_local * n_embd), 4);
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    const auto table = encode(table_f, dt);
    const Tensor t = dev_raw(table, dt, {n_vocab_local, n_embd});
    // 5 ids ride in the kernel parameters; 20 are uploaded.
    for (std::vector<int32_t> ids :
         {std::vector<int32_t>{100, 149, 3, 120, 150},
          std::vector<int32_t>{101, 0,   149, 99,  150, 130,  100, 110, 111, 112,
                               113, 114, 115, 116, 117, 2000, 140, 141, 142, 143}}) {
      const int64_t n = static_cast<int64_t>(ids.size());
      std::vector<float> want(static_cast<size_t>(n * n_embd));
      ref::embed(ids.data(), n, table.data(), dt, n_vocab_local, vocab_start, n_embd, want.data());
      const Tensor out = zeros({n, n_embd});
      backend_->embed(ids, t, vocab_start, out);
      EXPECT_EQ(download(*backend_, out), want) << dtype_name(dt) << " " << n << " ids";
    }
  }
}

TEST_F(CudaOpsTest, RmsNormBothLaunchShapesAndInPlace) {
  for (auto [n_rows, n] : {std::pair<int64_t, int64_t>{7, 16},  // warp per row (q/k norm)
                           {33, 256},
                           {5, 257},  // block per row
                           {3, 4096}}) {
    const auto x = random_floats(static_cast<size_t>(n_rows * n), 5, 3.0f);
    const auto w = random_floats(static_cast<size_t>(n), 6);
    std::vector<float> want(x.size());
    ref::rms_norm(x.data(), w.data(), n_rows, n, 1e-6f, want.data());
    const Tensor tx = dev(x, {n_rows, n});
    const Tensor out = zeros({n_rows, n});
    backend_->rms_norm(tx, dev(w, {n}), 1e-6f, out);
    auto got = download(*backend_, out);
    EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()),
              2e-6f * max_abs(want.data(), want.size()))
        << n_rows << "x" << n;
    backend_->rms_norm(tx, dev(w, {n}), 1e-6f, tx);  // out aliases x
    got = download(*backend_, tx);
    EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()),
              2e-6f * max_abs(want.data(), want.size()));
  }
}

TEST_F(CudaOpsTest, ResidualAddIsFusedIntoTheNextNormOrFlushed) {
  const int64_t n_rows = 4, n = 512;
  const auto x = random_floats(static_cast<size_t>(n_rows * n), 7);
  const auto r = random_floats(static_cast<size_t>(n_rows * n), 8);
  const auto w = random_floats(static_cast<size_t>(n), 9);
  std::vector<float> sum(x.size()), want(x.size());
  for (size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + r[i];
  ref::rms_norm(sum.data(), w.data(), n_rows, n, 1e-5f, want.data());

  const CudaBackendStats* s = cuda_backend_stats(*backend_);
  const uint64_t fused_before = s->fused_add_norms;
  const Tensor tx = dev(x, {n_rows, n});
  const Tensor out = zeros({n_rows, n});
  backend_->add(tx, dev(r, {n_rows, n}));
  backend_->rms_norm(tx, dev(w, {n}), 1e-5f, out);  // x += r inside the norm kernel
  EXPECT_EQ(cuda_backend_stats(*backend_)->fused_add_norms, fused_before + 1);
  EXPECT_EQ(download(*backend_, tx), sum);  // the residual stream itself was updated
  const auto got = download(*backend_, out);
  EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()),
            2e-6f * max_abs(want.data(), want.size()));

  // An add followed by anything else runs on its own before that op.
  const Tensor ty = dev(x, {n_rows, n});
  backend_->add(ty, dev(r, {n_rows, n}));
  EXPECT_EQ(download(*backend_, ty), sum);
  const Tensor tz = dev(x, {n_rows, n});
  backend_->add(tz, dev(r, {n_rows, n}));
  backend_->rms_norm(tx, dev(w, {n}), 1e-5f, out);  // a different tensor: no fusion
  EXPECT_EQ(download(*backend_, tz), sum);
}

TEST_F(CudaOpsTest, RopeAtLargePositionsMatchesRef) {
  const int64_t n_head = 3, head_dim = 64;
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < inv.size(); ++i) {
    inv[i] = static_cast<float>(1.0 / std::pow(1e6, 2.0 * static_cast<double>(i) / head_dim));
  }
  for (std::vector<int32_t> pos : {std::vector<int32_t>{0, 1, 31999},
                                   std::vector<int32_t>{5, 6, 7, 8, 9, 10, 11, 12, 13, 30000}}) {
    const int64_t n = static_cast<int64_t>(pos.size());
    const auto x = random_floats(static_cast<size_t>(n * n_head * head_dim), 10);
    std::vector<float> want = x;
    ref::rope(want.data(), n, n_head, head_dim, pos.data(), inv.data());
    const Tensor t = dev(x, {n, n_head, head_dim});
    backend_->rope(t, pos, dev(inv, {head_dim / 2}));
    const auto got = download(*backend_, t);
    EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()), 1e-6f) << n << " positions";
  }
}

TEST_F(CudaOpsTest, SwigluAddCopyColumns) {
  const int64_t n_tokens = 6, n_ff = 300;
  const auto gu = random_floats(static_cast<size_t>(n_tokens * 2 * n_ff), 11, 4.0f);
  std::vector<float> want(static_cast<size_t>(n_tokens * n_ff));
  ref::swiglu(gu.data(), n_tokens, n_ff, want.data());
  const Tensor out = zeros({n_tokens, n_ff});
  backend_->swiglu(dev(gu, {n_tokens, 2 * n_ff}), out);
  auto got = download(*backend_, out);
  EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()),
            1e-6f * max_abs(want.data(), want.size()));

  const int64_t n_rows = 5, n_src = 40, begin = 7, n_cols = 13;
  const auto src = random_floats(static_cast<size_t>(n_rows * n_src), 12);
  std::vector<float> cols(static_cast<size_t>(n_rows * n_cols));
  ref::copy_columns(src.data(), n_rows, n_src, begin, n_cols, cols.data());
  const Tensor dst = zeros({n_rows, n_cols});
  backend_->copy_columns(dev(src, {n_rows, n_src}), begin, dst);
  EXPECT_EQ(download(*backend_, dst), cols);
}

TEST_F(CudaOpsTest, MaxElementAndArgmaxRows) {
  for (int64_t n : {1, 255, 4096, 4097, 151936}) {
    auto x = random_floats(static_cast<size_t>(n), 13 + n);
    const Backend::MaxElement m = backend_->max_element(dev(x, {n}));
    EXPECT_EQ(m.index, ref::argmax(x.data(), n)) << n;
    EXPECT_EQ(m.value, x[static_cast<size_t>(ref::argmax(x.data(), n))]);
    if (n > 4097) {  // a tie across chunks goes to the lowest index
      x[10] = x[100000] = 1e9f;
      EXPECT_EQ(backend_->max_element(dev(x, {n})).index, 10);
    }
  }
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

struct AttnCase {
  int64_t n_tokens, n_kv, n_head, n_head_kv, head_dim, window;
  bool contiguous;  // positions n_kv - n_tokens .. n_kv - 1, else spread out
};

TEST_F(CudaOpsTest, AttentionDecodeAndPrefillMatchRef) {
  const std::vector<AttnCase> cases = {
      {1, 1, 4, 4, 16, 0, true},        // first token
      {1, 700, 32, 8, 128, 0, true},    // split-K (several splits), GQA 4
      {1, 300, 12, 1, 24, 0, true},     // MQA, group 12 = two head chunks, head_dim 24
      {3, 90, 8, 2, 48, 6, true},       // sliding window, head_dim 48
      {8, 257, 16, 16, 256, 0, false},  // decode path limit, head_dim 256
      {9, 9, 4, 2, 32, 0, true},        // prefill from position 0
      {40, 100, 8, 2, 64, 0, true},     // prefill after 60 cached tokens
      {37, 37, 6, 3, 128, 5, true},     // prefill with sliding window
      {20, 64, 4, 1, 256, 0, false},    // prefill head_dim 256 (> 48 KiB shared memory)
      {33, 33, 24, 2, 16, 0, true},     // prefill, group 12 (rows split over head chunks)
  };
  for (const AttnCase& c : cases) {
    SCOPED_TRACE("n_tokens " + std::to_string(c.n_tokens) + " n_kv " + std::to_string(c.n_kv) +
                 " heads " + std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) +
                 " head_dim " + std::to_string(c.head_dim) + " window " + std::to_string(c.window));
    std::vector<int32_t> pos(static_cast<size_t>(c.n_tokens));
    for (int64_t t = 0; t < c.n_tokens; ++t) {
      pos[static_cast<size_t>(t)] =
          static_cast<int32_t>(c.contiguous ? c.n_kv - c.n_tokens + t : (t * 37 + 11) % c.n_kv);
    }
    const auto q = random_floats(static_cast<size_t>(c.n_tokens * c.n_head * c.head_dim), 21);
    const auto k = random_floats(static_cast<size_t>(c.n_kv * c.n_head_kv * c.head_dim), 22);
    const auto v = random_floats(static_cast<size_t>(c.n_kv * c.n_head_kv * c.head_dim), 23);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    std::vector<float> want(q.size());
    ref::attention(q.data(), k.data(), v.data(), pos.data(), c.n_tokens, c.n_kv, c.n_head,
                   c.n_head_kv, c.head_dim, c.window, scale, want.data());
    const Tensor out = zeros({c.n_tokens, c.n_head * c.head_dim});
    backend_->attention(dev(q, {c.n_tokens, c.n_head, c.head_dim}),
                        dev(k, {c.n_kv, c.n_head_kv, c.head_dim}),
                        dev(v, {c.n_kv, c.n_head_kv, c.head_dim}), pos, c.window, scale, out);
    const auto got = download(*backend_, out);
    EXPECT_LE(max_abs_diff(got.data(), want.data(), got.size()), 2e-5f);
  }
  const CudaBackendStats* s = cuda_backend_stats(*backend_);
  EXPECT_EQ(s->attention_decode_calls, 5u);
  EXPECT_EQ(s->attention_prefill_calls, 5u);
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
