// CUDA rotary embedding (rotate-half / NeoX layout), in place. cos/sin are computed in double
// from the f32 angle and rounded to f32, exactly like kernels/ref (and Hugging Face, which
// rounds its f32 angle's cos/sin to f32), so positions in the tens of thousands stay exact.
#include "kernels/cuda/common.cuh"

namespace shardlm::cuda {

namespace {

__global__ void rope_kernel(float* __restrict__ x, int64_t n_tokens, int64_t n_head,
                            int64_t head_dim, I32Arg pos, const float* __restrict__ inv_freq) {
  const int64_t half = head_dim / 2;
  const int64_t total = n_tokens * n_head * half;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = e % half;
    const int64_t th = e / half;  // token * n_head + head
    const int64_t t = th / n_head;
    const float angle = static_cast<float>(arg_at(pos, t)) * inv_freq[i];
    const float c = static_cast<float>(cos(static_cast<double>(angle)));
    const float s = static_cast<float>(sin(static_cast<double>(angle)));
    float* v = x + th * head_dim;
    const float a = v[i], b = v[i + half];
    v[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    v[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

}  // namespace

void rope(float* x, int64_t n_tokens, int64_t n_head, int64_t head_dim, const I32Arg& pos,
          const float* inv_freq, cudaStream_t stream) {
  const int64_t total = n_tokens * n_head * (head_dim / 2);
  if (total <= 0) return;
  constexpr int kThreads = 256;
  const unsigned blocks = grid_1d(total, kThreads) > 4096 ? 4096 : grid_1d(total, kThreads);
  rope_kernel<<<blocks, kThreads, 0, stream>>>(x, n_tokens, n_head, head_dim, pos, inv_freq);
  check_launch("rope");
}

}  // namespace shardlm::cuda
