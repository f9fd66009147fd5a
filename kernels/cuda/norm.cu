// CUDA RMSNorm, optionally fused with the residual add that precedes it in the transformer.
// Two shapes of launch: one warp per row for short rows (per-head q/k norm, head_dim <= 256),
// one 256-thread block per row for long rows (n_embd).
#include "kernels/cuda/common.cuh"

namespace shardlm::cuda {

namespace {

// One warp per row, kRowsPerBlock rows per block.
constexpr int kRowsPerBlock = 4;

__global__ void rms_norm_warp_kernel(float* x, const float* __restrict__ residual,
                                     const float* __restrict__ w, int64_t n_rows, int64_t n,
                                     float eps, float* out) {
  const int64_t row = blockIdx.x * int64_t{kRowsPerBlock} + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= n_rows) return;
  float* xr = x + row * n;
  float ss = 0.0f;
  for (int64_t i = lane; i < n; i += 32) {
    float v = xr[i];
    if (residual != nullptr) {
      v += residual[row * n + i];
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = warp_sum(ss);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
  // Each lane rereads only the elements it wrote, so out may alias x.
  for (int64_t i = lane; i < n; i += 32) out[row * n + i] = w[i] * (xr[i] * inv);
}

template <int kThreads>
__global__ void rms_norm_block_kernel(float* x, const float* __restrict__ residual,
                                      const float* __restrict__ w, int64_t n, float eps,
                                      float* out) {
  const int64_t row = blockIdx.x;
  float* xr = x + row * n;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    float v = xr[i];
    if (residual != nullptr) {
      v += residual[row * n + i];
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = block_sum<kThreads>(ss);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += kThreads) out[row * n + i] = w[i] * (xr[i] * inv);
}

}  // namespace

void rms_norm(float* x, const float* residual, const float* w, int64_t n_rows, int64_t n, float eps,
              float* out, cudaStream_t stream) {
  if (n_rows <= 0 || n <= 0) return;
  if (n <= 256) {
    rms_norm_warp_kernel<<<grid_1d(n_rows, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(
        x, residual, w, n_rows, n, eps, out);
  } else {
    // Rows go on grid.x (up to 2^31 - 1), so any token count fits.
    rms_norm_block_kernel<256>
        <<<static_cast<unsigned>(n_rows), 256, 0, stream>>>(x, residual, w, n, eps, out);
  }
  check_launch("rms_norm");
}

}  // namespace shardlm::cuda
