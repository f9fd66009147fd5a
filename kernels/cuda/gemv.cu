// CUDA decode GEMV: y = x @ W^T (+ bias) for a few tokens, f32 activations, f32/f16/bf16
// weights, f32 accumulation. Decode is bound by reading W once per token, so the kernel is
// built around the weight stream: one warp per output row, each lane loading 16 bytes per step
// (8 bf16/f16 or 4 f32 weights) with four loads in flight, x read through the read-only cache,
// and a warp reduction at the end. Rows whose length or alignment does not allow 16-byte loads
// take a scalar loop. Prefill (more than kDecodeMaxTokens rows) goes to cuBLAS instead.
#include "kernels/cuda/common.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 8;  // output rows per block

// 16 bytes of weights widened to f32.
__device__ __forceinline__ void unpack(const uint4& r, float (&f)[4], const float*) {
  f[0] = __uint_as_float(r.x);
  f[1] = __uint_as_float(r.y);
  f[2] = __uint_as_float(r.z);
  f[3] = __uint_as_float(r.w);
}

__device__ __forceinline__ void unpack(const uint4& r, float (&f)[8], const __nv_bfloat16*) {
  const uint32_t u[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    f[2 * k] = __uint_as_float(u[k] << 16);
    f[2 * k + 1] = __uint_as_float(u[k] & 0xffff0000u);
  }
}

__device__ __forceinline__ void unpack(const uint4& r, float (&f)[8], const __half*) {
  const uint32_t u[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    __half2 h;
    memcpy(&h, &u[k], sizeof h);
    const float2 p = __half22float2(h);
    f[2 * k] = p.x;
    f[2 * k + 1] = p.y;
  }
}

// acc[t] += dot(16 bytes of weights at vector index `chunk`, the matching x of token t).
template <class W, int kNT>
__device__ __forceinline__ void fma_chunk(const uint4& raw, int64_t chunk,
                                          const float* __restrict__ x, int n_tokens, int64_t n_in,
                                          float (&acc)[kNT]) {
  constexpr int kE = 16 / sizeof(W);
  float wf[kE];
  unpack(raw, wf, static_cast<const W*>(nullptr));
#pragma unroll
  for (int t = 0; t < kNT; ++t) {
    if (t < n_tokens) {
      const float4* xv = reinterpret_cast<const float4*>(x + t * n_in) + chunk * (kE / 4);
#pragma unroll
      for (int k = 0; k < kE / 4; ++k) {
        const float4 xx = __ldg(xv + k);
        acc[t] = fmaf(wf[4 * k + 0], xx.x, acc[t]);
        acc[t] = fmaf(wf[4 * k + 1], xx.y, acc[t]);
        acc[t] = fmaf(wf[4 * k + 2], xx.z, acc[t]);
        acc[t] = fmaf(wf[4 * k + 3], xx.w, acc[t]);
      }
    }
  }
}

template <class W, int kNT>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const float* __restrict__ x, int n_tokens, int64_t n_in, const W* __restrict__ w,
                int64_t n_out, const float* __restrict__ bias, float* __restrict__ y,
                bool vectorized) {
  const int lane = threadIdx.x % 32;
  const int64_t row = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32;
  if (row >= n_out) return;
  constexpr int kE = 16 / sizeof(W);
  const W* wr = w + row * n_in;
  float acc[kNT];
#pragma unroll
  for (int t = 0; t < kNT; ++t) acc[t] = 0.0f;

  const int64_t n_vec = vectorized ? n_in / kE : 0;
  const uint4* wv = reinterpret_cast<const uint4*>(wr);
  int64_t c = lane;
  for (; c + 96 < n_vec; c += 128) {  // four 16-byte loads in flight per lane
    uint4 r[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) r[u] = __ldcs(wv + c + 32 * u);
#pragma unroll
    for (int u = 0; u < 4; ++u) fma_chunk<W, kNT>(r[u], c + 32 * u, x, n_tokens, n_in, acc);
  }
  for (; c < n_vec; c += 32) fma_chunk<W, kNT>(__ldcs(wv + c), c, x, n_tokens, n_in, acc);
  for (int64_t i = n_vec * kE + lane; i < n_in; i += 32) {  // tail, or everything if unaligned
    const float wi = to_f32(wr[i]);
#pragma unroll
    for (int t = 0; t < kNT; ++t) {
      if (t < n_tokens) acc[t] = fmaf(wi, x[t * n_in + i], acc[t]);
    }
  }
#pragma unroll
  for (int t = 0; t < kNT; ++t) acc[t] = warp_sum(acc[t]);
  if (lane == 0) {
    const float b = bias != nullptr ? bias[row] : 0.0f;
#pragma unroll
    for (int t = 0; t < kNT; ++t) {
      if (t < n_tokens) y[t * n_out + row] = acc[t] + b;
    }
  }
}

template <class W>
void launch(const float* x, int64_t n_tokens, int64_t n_in, const W* w, int64_t n_out,
            const float* bias, float* y, cudaStream_t stream) {
  constexpr int kE = 16 / sizeof(W);
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool vectorized = n_in % kE == 0 && aligned(w) && aligned(x);
  const unsigned blocks = grid_1d(n_out, kWarps);
  const int nt = static_cast<int>(n_tokens);
  if (nt == 1) {
    gemv_kernel<W, 1>
        <<<blocks, kWarps * 32, 0, stream>>>(x, nt, n_in, w, n_out, bias, y, vectorized);
  } else if (nt == 2) {
    gemv_kernel<W, 2>
        <<<blocks, kWarps * 32, 0, stream>>>(x, nt, n_in, w, n_out, bias, y, vectorized);
  } else if (nt <= 4) {
    gemv_kernel<W, 4>
        <<<blocks, kWarps * 32, 0, stream>>>(x, nt, n_in, w, n_out, bias, y, vectorized);
  } else {
    gemv_kernel<W, 8>
        <<<blocks, kWarps * 32, 0, stream>>>(x, nt, n_in, w, n_out, bias, y, vectorized);
  }
}

}  // namespace

void gemv(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype, int64_t n_out,
          const float* bias, float* y, cudaStream_t stream) {
  if (n_tokens < 1 || n_tokens > kDecodeMaxTokens) {
    fail(StatusCode::kInternal, "cuda gemv of " + std::to_string(n_tokens) + " tokens (1.." +
                                    std::to_string(kDecodeMaxTokens) + ")");
  }
  if (n_out <= 0) return;
  switch (dtype) {
    case DType::kF32:
      launch(x, n_tokens, n_in, static_cast<const float*>(w), n_out, bias, y, stream);
      break;
    case DType::kF16:
      launch(x, n_tokens, n_in, static_cast<const __half*>(w), n_out, bias, y, stream);
      break;
    case DType::kBF16:
      launch(x, n_tokens, n_in, static_cast<const __nv_bfloat16*>(w), n_out, bias, y, stream);
      break;
    case DType::kInt8:  // quantized weights take gemv_quantized
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF8E4M3:
      fail(StatusCode::kInternal,
           std::string("cuda gemv of ") + dtype_name(dtype) + " weights (f32, f16 or bf16 only)");
  }
  check_launch("gemv");
}

}  // namespace shardlm::cuda
