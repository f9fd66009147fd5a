// CUDA RMSNorm, optionally fused with the residual add that precedes it in the transformer.
// Two shapes of launch: one warp per row for short rows (per-head q/k norm, head_dim <= 256),
// one 256-thread block per row for long rows (n_embd). Long rows whose length and pointers allow
// 16-byte accesses (every model shape) hold the row in registers: all loads of a thread are in
// flight at once and the row is read once, where a plain loop waits on one load per iteration.
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

// One block of kThreads per row, n % 4 == 0, n <= kThreads * 4 * kVec, 16-byte aligned rows.
template <int kThreads, int kVec>
__global__ void __launch_bounds__(kThreads)
    rms_norm_vec_kernel(float* x, const float* __restrict__ residual, const float* __restrict__ w,
                        int64_t n, float eps, float* out) {
  const int64_t row = blockIdx.x;
  const int n4 = static_cast<int>(n / 4);
  float4* xr = reinterpret_cast<float4*>(x + row * n);
  const float4* rr =
      residual != nullptr ? reinterpret_cast<const float4*>(residual + row * n) : nullptr;
  float4 v[kVec];
  float ss = 0.0f;
#pragma unroll
  for (int c = 0; c < kVec; ++c) {
    const int i = threadIdx.x + c * kThreads;
    if (i < n4) v[c] = xr[i];
  }
  if (rr != nullptr) {
#pragma unroll
    for (int c = 0; c < kVec; ++c) {
      const int i = threadIdx.x + c * kThreads;
      if (i < n4) {
        const float4 b = rr[i];
        v[c].x += b.x;
        v[c].y += b.y;
        v[c].z += b.z;
        v[c].w += b.w;
        xr[i] = v[c];
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kVec; ++c) {
    if (threadIdx.x + c * kThreads < n4) {
      ss += v[c].x * v[c].x + v[c].y * v[c].y + v[c].z * v[c].z + v[c].w * v[c].w;
    }
  }
  ss = block_sum<kThreads>(ss);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(n) + eps);
  const float4* w4 = reinterpret_cast<const float4*>(w);
  float4* o4 = reinterpret_cast<float4*>(out + row * n);
#pragma unroll
  for (int c = 0; c < kVec; ++c) {
    const int i = threadIdx.x + c * kThreads;
    if (i < n4) {  // out may alias x: each thread writes only the elements it read
      const float4 ww = w4[i];
      o4[i] = make_float4(ww.x * (v[c].x * inv), ww.y * (v[c].y * inv), ww.z * (v[c].z * inv),
                          ww.w * (v[c].w * inv));
    }
  }
}

constexpr int kVecThreads = 256;
constexpr int kVecMax = 16;  // rows up to 256 x 4 x 16 = 16384 floats

}  // namespace

void rms_norm(float* x, const float* residual, const float* w, int64_t n_rows, int64_t n, float eps,
              float* out, cudaStream_t stream) {
  if (n_rows <= 0 || n <= 0) return;
  if (n <= 256) {
    rms_norm_warp_kernel<<<grid_1d(n_rows, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(
        x, residual, w, n_rows, n, eps, out);
  } else if (n % 4 == 0 && n <= int64_t{kVecThreads} * 4 * kVecMax &&
             (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(residual) |
              reinterpret_cast<uintptr_t>(w) | reinterpret_cast<uintptr_t>(out)) %
                     16 ==
                 0) {
    // Rows go on grid.x (up to 2^31 - 1), so any token count fits.
    const unsigned grid = static_cast<unsigned>(n_rows);
    if (n <= int64_t{kVecThreads} * 4 * 4) {
      rms_norm_vec_kernel<kVecThreads, 4>
          <<<grid, kVecThreads, 0, stream>>>(x, residual, w, n, eps, out);
    } else {
      rms_norm_vec_kernel<kVecThreads, kVecMax>
          <<<grid, kVecThreads, 0, stream>>>(x, residual, w, n, eps, out);
    }
  } else {
    rms_norm_block_kernel<256>
        <<<static_cast<unsigned>(n_rows), 256, 0, stream>>>(x, residual, w, n, eps, out);
  }
  check_launch("rms_norm");
}

}  // namespace shardlm::cuda
