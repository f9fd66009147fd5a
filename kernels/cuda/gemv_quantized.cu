// CUDA matmul and embedding lookup for block-quantized weights (int8 / int4 / int4g128, row
// layouts in runtime/core/dtype.h: a row's values, then one f16 scale per 32 inputs, or per 128
// for int4g128): each weight is
// dequantized exactly (scale * q) and products are summed in f32, at every token count. One warp
// per output row; lane j takes input 32 b + j of each block b, so a warp reads a block's bytes
// together. Correct first: not tuned (no vectorized loads, and prefill re-reads the weights every
// kQuantTokens tokens instead of running a tensor-core GEMM).
#include "kernels/cuda/common.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 8;        // output rows per block
constexpr int kQuantTokens = 8;  // tokens per block (grid.y walks the token groups)

// Element k of a quantized row (kType) of n_in inputs, dequantized.
template <DType kType>
__device__ __forceinline__ float load_wq(const uint8_t* __restrict__ row, int64_t n_in, int64_t k) {
  constexpr bool kInt4 = kType != DType::kInt8;
  constexpr int64_t kScaleBlocks = kType == DType::kInt4G128 ? 4 : 1;  // blocks per scale
  const int64_t b = k / 32;
  float q;
  int64_t scale_at;
  if (kInt4) {
    // int4_position (runtime/core/dtype.h): groups of 16 blocks (the last one G blocks); in
    // group g, byte 256 g + 4 G s + 4 j + i holds input 32 j + 8 s + i of the group (low
    // nibble) and 32 j + 8 s + 4 + i (high).
    const int64_t p = k % 32, g = b / 16;
    const int64_t G = min(int64_t{16}, n_in / 32 - 16 * g);
    const int64_t at = 256 * g + 4 * G * (p / 8) + 4 * (b % 16) + p % 4;
    const int shift = (p % 8) >= 4 ? 4 : 0;
    q = static_cast<float>(static_cast<int>((__ldg(row + at) >> shift) & 0x0F) - 8);
    scale_at = n_in / 2 + b / kScaleBlocks * 2;
  } else {
    // int8_byte (runtime/core/dtype.h): in group g of G blocks, byte 512 g + 4 G s + 4 j + i holds
    // input 32 j + 4 s + i of the group.
    const int64_t p = k % 32, g = b / 16;
    const int64_t G = min(int64_t{16}, n_in / 32 - 16 * g);
    q = static_cast<float>(
        static_cast<int>(__ldg(row + 512 * g + 4 * G * (p / 4) + 4 * (b % 16) + p % 4)) - 128);
    scale_at = n_in + b * 2;
  }
  const unsigned short h =
      static_cast<unsigned short>(__ldg(row + scale_at) | (__ldg(row + scale_at + 1) << 8));
  return __half2float(__ushort_as_half(h)) * q;
}

template <DType kType>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_quantized_kernel(const float* __restrict__ x, int64_t n_tokens, int64_t n_in,
                          const uint8_t* __restrict__ w, size_t row_bytes, int64_t n_out,
                          const float* __restrict__ bias, float* __restrict__ y) {
  const int lane = threadIdx.x % 32;
  const int64_t row = blockIdx.x * int64_t{kWarps} + threadIdx.x / 32;
  if (row >= n_out) return;
  const int64_t t0 = blockIdx.y * int64_t{kQuantTokens};
  const int nt = static_cast<int>(n_tokens - t0 < kQuantTokens ? n_tokens - t0 : kQuantTokens);
  const uint8_t* wr = w + row * row_bytes;
  float acc[kQuantTokens];
#pragma unroll
  for (int t = 0; t < kQuantTokens; ++t) acc[t] = 0.0f;
  for (int64_t k = lane; k < n_in; k += 32) {
    const float wv = load_wq<kType>(wr, n_in, k);
#pragma unroll
    for (int t = 0; t < kQuantTokens; ++t)
      if (t < nt) acc[t] = fmaf(wv, __ldg(x + (t0 + t) * n_in + k), acc[t]);
  }
#pragma unroll
  for (int t = 0; t < kQuantTokens; ++t) {
    float s = acc[t];
    for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0 && t < nt) y[(t0 + t) * n_out + row] = s + (bias ? bias[row] : 0.0f);
  }
}

template <DType kType>
__global__ void embed_quantized_kernel(I32Arg ids, const uint8_t* __restrict__ table,
                                       size_t row_bytes, int64_t n_vocab_local, int64_t vocab_start,
                                       int64_t n_embd, float* __restrict__ out) {
  const int64_t t = blockIdx.y;
  const int64_t row = static_cast<int64_t>(arg_at(ids, t)) - vocab_start;
  float* o = out + t * n_embd;
  const bool own = row >= 0 && row < n_vocab_local;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n_embd;
       i += int64_t{gridDim.x} * blockDim.x) {
    o[i] = own ? load_wq<kType>(table + row * row_bytes, n_embd, i) : 0.0f;
  }
}

}  // namespace

void gemv_quantized(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
                    int64_t n_out, const float* bias, float* y, cudaStream_t stream) {
  if (n_tokens <= 0 || n_out <= 0) return;
  constexpr int64_t kMaxGridY = 65535;
  if (n_tokens > kMaxGridY * kQuantTokens) {  // launch in slices of tokens
    const int64_t step = kMaxGridY * kQuantTokens;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += step) {
      const int64_t n = n_tokens - t0 < step ? n_tokens - t0 : step;
      gemv_quantized(x + t0 * n_in, n, n_in, w, dtype, n_out, bias, y + t0 * n_out, stream);
    }
    return;
  }
  const dim3 grid(grid_1d(n_out, kWarps),
                  static_cast<unsigned>((n_tokens + kQuantTokens - 1) / kQuantTokens));
  const size_t rb = row_bytes(dtype, n_in);
  const auto* wb = static_cast<const uint8_t*>(w);
  if (dtype == DType::kInt4) {
    gemv_quantized_kernel<DType::kInt4>
        <<<grid, kWarps * 32, 0, stream>>>(x, n_tokens, n_in, wb, rb, n_out, bias, y);
  } else if (dtype == DType::kInt4G128) {
    gemv_quantized_kernel<DType::kInt4G128>
        <<<grid, kWarps * 32, 0, stream>>>(x, n_tokens, n_in, wb, rb, n_out, bias, y);
  } else {
    gemv_quantized_kernel<DType::kInt8>
        <<<grid, kWarps * 32, 0, stream>>>(x, n_tokens, n_in, wb, rb, n_out, bias, y);
  }
  check_launch("gemv_quantized");
}

void embed_quantized(const I32Arg& ids, int64_t n_tokens, const void* table, DType dtype,
                     int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out,
                     cudaStream_t stream) {
  if (n_tokens <= 0) return;
  constexpr int kThreads = 256;
  constexpr int64_t kMaxGridY = 65535;
  if (n_tokens > kMaxGridY) {  // only device arrays can be this long: launch in slices
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxGridY) {
      I32Arg part = ids;
      part.dev = ids.dev + t0;
      const int64_t n = n_tokens - t0 < kMaxGridY ? n_tokens - t0 : kMaxGridY;
      embed_quantized(part, n, table, dtype, n_vocab_local, vocab_start, n_embd, out + t0 * n_embd,
                      stream);
    }
    return;
  }
  const unsigned gx = grid_1d(n_embd, kThreads);
  const dim3 grid(gx > 64 ? 64 : gx, static_cast<unsigned>(n_tokens));
  const size_t rb = row_bytes(dtype, n_embd);
  const auto* tb = static_cast<const uint8_t*>(table);
  if (dtype == DType::kInt4) {
    embed_quantized_kernel<DType::kInt4>
        <<<grid, kThreads, 0, stream>>>(ids, tb, rb, n_vocab_local, vocab_start, n_embd, out);
  } else if (dtype == DType::kInt4G128) {
    embed_quantized_kernel<DType::kInt4G128>
        <<<grid, kThreads, 0, stream>>>(ids, tb, rb, n_vocab_local, vocab_start, n_embd, out);
  } else {
    embed_quantized_kernel<DType::kInt8>
        <<<grid, kThreads, 0, stream>>>(ids, tb, rb, n_vocab_local, vocab_start, n_embd, out);
  }
  check_launch("embed_quantized");
}

}  // namespace shardlm::cuda
