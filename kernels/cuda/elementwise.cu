// Small CUDA element-wise kernels: SwiGLU, add, column copy (splitting the fused QKV output),
// bias add after a GEMM, the hi/lo split feeding the tensor-core GEMMs, and the rank-ordered
// sum used by ranks that share one device. Grid-stride loops, f32 throughout.
#include "kernels/cuda/common.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxBlocks = 4096;

unsigned blocks_for(int64_t n) {
  const unsigned b = grid_1d(n, kThreads);
  return b > kMaxBlocks ? kMaxBlocks : b;
}

#define SHARDLM_GRID_STRIDE(i, n)                                           \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += int64_t{gridDim.x} * blockDim.x)

__global__ void swiglu_kernel(const float* __restrict__ gate_up, int64_t n_tokens, int64_t n_ff,
                              float* __restrict__ out) {
  SHARDLM_GRID_STRIDE(e, n_tokens * n_ff) {
    const int64_t t = e / n_ff, i = e % n_ff;
    const float g = gate_up[t * 2 * n_ff + i];
    const float u = gate_up[t * 2 * n_ff + n_ff + i];
    out[e] = g / (1.0f + expf(-g)) * u;
  }
}

__global__ void add_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t n) {
  SHARDLM_GRID_STRIDE(i, n) {
    y[i] += x[i];
  }
}

__global__ void copy_columns_kernel(const float* __restrict__ src, int64_t n_rows,
                                    int64_t n_src_cols, int64_t col_begin, int64_t n_cols,
                                    float* __restrict__ dst) {
  SHARDLM_GRID_STRIDE(e, n_rows * n_cols) {
    const int64_t r = e / n_cols, c = e % n_cols;
    dst[e] = src[r * n_src_cols + col_begin + c];
  }
}

__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias,
                                int64_t n_rows, int64_t n_out) {
  SHARDLM_GRID_STRIDE(e, n_rows * n_out) {
    y[e] += bias[e % n_out];
  }
}

__global__ void split_bf16_kernel(const float* __restrict__ x, int64_t n,
                                  __nv_bfloat16* __restrict__ hi, __nv_bfloat16* __restrict__ lo) {
  SHARDLM_GRID_STRIDE(i, n) {
    const __nv_bfloat16 h = __float2bfloat16_rn(x[i]);
    hi[i] = h;
    lo[i] = __float2bfloat16_rn(x[i] - __bfloat162float(h));
  }
}

__global__ void split_f16_kernel(const float* __restrict__ x, int64_t n, __half* __restrict__ hi,
                                 __half* __restrict__ lo) {
  SHARDLM_GRID_STRIDE(i, n) {
    const __half h = __float2half_rn(x[i]);
    hi[i] = h;
    lo[i] = __float2half_rn(x[i] - __half2float(h));
  }
}

struct Sources {
  const float* p[kMaxSumSources];
};

__global__ void sum_buffers_kernel(Sources srcs, int n_srcs, float* dst, int64_t n) {
  SHARDLM_GRID_STRIDE(i, n) {
    float s = srcs.p[0][i];
    for (int r = 1; r < n_srcs; ++r) s += srcs.p[r][i];
    dst[i] = s;
  }
}

#undef SHARDLM_GRID_STRIDE

}  // namespace

void swiglu(const float* gate_up, int64_t n_tokens, int64_t n_ff, float* out, cudaStream_t stream) {
  if (n_tokens * n_ff <= 0) return;
  swiglu_kernel<<<blocks_for(n_tokens * n_ff), kThreads, 0, stream>>>(gate_up, n_tokens, n_ff, out);
  check_launch("swiglu");
}

void add(float* y, const float* x, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, x, n);
  check_launch("add");
}

void copy_columns(const float* src, int64_t n_rows, int64_t n_src_cols, int64_t col_begin,
                  int64_t n_cols, float* dst, cudaStream_t stream) {
  if (n_rows * n_cols <= 0) return;
  copy_columns_kernel<<<blocks_for(n_rows * n_cols), kThreads, 0, stream>>>(src, n_rows, n_src_cols,
                                                                            col_begin, n_cols, dst);
  check_launch("copy_columns");
}

void add_bias(float* y, const float* bias, int64_t n_rows, int64_t n_out, cudaStream_t stream) {
  if (n_rows * n_out <= 0) return;
  add_bias_kernel<<<blocks_for(n_rows * n_out), kThreads, 0, stream>>>(y, bias, n_rows, n_out);
  check_launch("add_bias");
}

void split_hi_lo(const float* x, int64_t n, DType dtype, void* hi, void* lo, cudaStream_t stream) {
  if (n <= 0) return;
  if (dtype == DType::kBF16) {
    split_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, static_cast<__nv_bfloat16*>(hi),
                                                              static_cast<__nv_bfloat16*>(lo));
  } else if (dtype == DType::kF16) {
    split_f16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, static_cast<__half*>(hi),
                                                             static_cast<__half*>(lo));
  } else {
    fail(StatusCode::kInternal,
         std::string("split_hi_lo: no 16-bit split for ") + dtype_name(dtype));
  }
  check_launch("split_hi_lo");
}

void sum_buffers(const float* const* srcs, int n_srcs, float* dst, int64_t n, cudaStream_t stream) {
  if (n_srcs < 1 || n_srcs > kMaxSumSources) {
    fail(StatusCode::kInternal, "sum_buffers of " + std::to_string(n_srcs) + " sources (1.." +
                                    std::to_string(kMaxSumSources) + ")");
  }
  if (n <= 0) return;
  Sources s{};
  for (int r = 0; r < n_srcs; ++r) s.p[r] = srcs[r];
  sum_buffers_kernel<<<blocks_for(n), kThreads, 0, stream>>>(s, n_srcs, dst, n);
  check_launch("sum_buffers");
}

}  // namespace shardlm::cuda
