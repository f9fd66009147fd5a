// CUDA embedding lookup (vocab-parallel): one block row per token, widened to f32.
#include "kernels/cuda/common.cuh"

namespace shardlm::cuda {

namespace {

template <class T>
__global__ void embed_kernel(I32Arg ids, const T* __restrict__ table, int64_t n_vocab_local,
                             int64_t vocab_start, int64_t n_embd, float* __restrict__ out) {
  const int64_t t = blockIdx.y;
  const int64_t row = static_cast<int64_t>(arg_at(ids, t)) - vocab_start;
  float* o = out + t * n_embd;
  const bool own = row >= 0 && row < n_vocab_local;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n_embd;
       i += int64_t{gridDim.x} * blockDim.x) {
    o[i] = own ? to_f32(table[row * n_embd + i]) : 0.0f;
  }
}

}  // namespace

void embed(const I32Arg& ids, int64_t n_tokens, const void* table, DType dtype,
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
      embed(part, n, table, dtype, n_vocab_local, vocab_start, n_embd, out + t0 * n_embd, stream);
    }
    return;
  }
  const unsigned gx = grid_1d(n_embd, kThreads);
  const dim3 grid(gx > 64 ? 64 : gx, static_cast<unsigned>(n_tokens));
  switch (dtype) {
    case DType::kF32:
      embed_kernel<<<grid, kThreads, 0, stream>>>(ids, static_cast<const float*>(table),
                                                  n_vocab_local, vocab_start, n_embd, out);
      break;
    case DType::kF16:
      embed_kernel<<<grid, kThreads, 0, stream>>>(ids, static_cast<const __half*>(table),
                                                  n_vocab_local, vocab_start, n_embd, out);
      break;
    case DType::kBF16:
      embed_kernel<<<grid, kThreads, 0, stream>>>(ids, static_cast<const __nv_bfloat16*>(table),
                                                  n_vocab_local, vocab_start, n_embd, out);
      break;
    case DType::kInt8:  // quantized tables take embed_quantized
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF8E4M3:
      fail(StatusCode::kInternal,
           std::string("cuda embed of a ") + dtype_name(dtype) + " table (f32, f16 or bf16 only)");
  }
  check_launch("embed");
}

}  // namespace shardlm::cuda
