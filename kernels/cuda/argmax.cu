// CUDA row-wise argmax over logits, optionally Gumbel-perturbed (device-side sampling), so
// decode reads back one (value, index) pair per row instead of the whole vocabulary slice.
// Pass 1: blocks scan 4096-element chunks of a row; pass 2: one block per row merges chunks.
// Ties go to the lowest index, as in kernels/ref.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gumbel.h"

namespace shardlm::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 4096;

struct Best {
  float value;
  int64_t index;  // -1: none yet
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (a.index < 0) return b;
  if (b.index < 0) return a;
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

__device__ Best block_best(Best b) {
  __shared__ float vs[kThreads / 32];
  __shared__ int64_t is[kThreads / 32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other;
    other.value = __shfl_xor_sync(0xffffffffu, b.value, o);
    other.index = __shfl_xor_sync(0xffffffffu, b.index, o);
    b = better(b, other);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    vs[warp] = b.value;
    is[warp] = b.index;
  }
  __syncthreads();
  Best r{0.0f, -1};
  if (threadIdx.x == 0) {
    for (int w = 0; w < kThreads / 32; ++w) r = better(r, Best{vs[w], is[w]});
  }
  return r;  // valid in thread 0
}

__global__ void argmax_chunks(const float* __restrict__ x, int64_t n, int64_t n_chunks,
                              float temperature, uint64_t seed, int64_t index_offset,
                              float* __restrict__ part_value, int64_t* __restrict__ part_index) {
  const int64_t row = blockIdx.y, chunk = blockIdx.x;
  const int64_t begin = chunk * kChunk;
  const int64_t end = min(n, begin + kChunk);
  const float* xr = x + row * n;
  Best b{0.0f, -1};
  for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    float val = xr[i];
    if (temperature > 0.0f) val = val / temperature + gumbel_noise(seed, index_offset + i);
    b = better(b, Best{val, i});
  }
  b = block_best(b);
  if (threadIdx.x == 0) {
    part_value[row * n_chunks + chunk] = b.value;
    part_index[row * n_chunks + chunk] = b.index;
  }
}

__global__ void argmax_merge(const float* __restrict__ part_value,
                             const int64_t* __restrict__ part_index, int64_t n_chunks,
                             float* __restrict__ out_value, int64_t* __restrict__ out_index) {
  const int64_t row = blockIdx.x;
  Best b{0.0f, -1};
  for (int64_t c = threadIdx.x; c < n_chunks; c += kThreads) {
    b = better(b, Best{part_value[row * n_chunks + c], part_index[row * n_chunks + c]});
  }
  b = block_best(b);
  if (threadIdx.x == 0) {
    out_value[row] = b.value;
    out_index[row] = b.index;
  }
}

int64_t chunks_of(int64_t n) {
  return (n + kChunk - 1) / kChunk;
}

}  // namespace

size_t argmax_workspace_bytes(int64_t n_rows, int64_t n) {
  return static_cast<size_t>(n_rows * chunks_of(n)) * (sizeof(float) + sizeof(int64_t));
}

void argmax_rows(const float* x, int64_t n_rows, int64_t n, float temperature, uint64_t seed,
                 int64_t index_offset, void* workspace, float* out_value, int64_t* out_index,
                 cudaStream_t stream) {
  if (n_rows < 1 || n < 1 || n_rows > 65535) {
    fail(StatusCode::kInternal,
         "cuda argmax of " + std::to_string(n_rows) + " rows of " + std::to_string(n));
  }
  const int64_t n_chunks = chunks_of(n);
  auto* part_index = static_cast<int64_t*>(workspace);  // 8-byte values first: aligned
  auto* part_value = reinterpret_cast<float*>(part_index + n_rows * n_chunks);
  argmax_chunks<<<dim3(static_cast<unsigned>(n_chunks), static_cast<unsigned>(n_rows)), kThreads, 0,
                  stream>>>(x, n, n_chunks, temperature, seed, index_offset, part_value,
                            part_index);
  check_launch("argmax (chunks)");
  argmax_merge<<<static_cast<unsigned>(n_rows), kThreads, 0, stream>>>(
      part_value, part_index, n_chunks, out_value, out_index);
  check_launch("argmax (merge)");
}

}  // namespace shardlm::cuda
