// CUDA split-K decode attention (flash-decoding) over one sequence's f32 KV cache.
// Pass 1: block (split, kv head x head chunk, token) streams its slice of the visible keys;
// its 4 warps take chunks of consecutive keys in turn, read each K and V row once for all (up
// to 8) query heads of the kv group and keep an online softmax per head (decode_keys.cuh); the
// warps are merged in shared memory and the block writes an unnormalized partial (acc[head_dim],
// max, sum). Pass 2: one block per (token, head) merges the splits and normalizes.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode_keys.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = kDecodeMaxGroup;  // larger groups take several head chunks

template <int kDPL>  // head_dim elements per lane: head_dim <= 32 * kDPL
__global__ void __launch_bounds__(kWarps * 32)
    attention_decode_partial(const float* __restrict__ q, const float* __restrict__ k,
                             const float* __restrict__ v, I32Arg pos, int64_t n_kv, int64_t n_head,
                             int64_t n_head_kv, int head_dim, int64_t sliding_window, float scale,
                             int n_splits, int n_hchunks, float* __restrict__ part,
                             float* __restrict__ part_ml) {
  constexpr int kDP = kDPL * 32;
  __shared__ float q_s[kMaxGroup][kDP];
  __shared__ float m_s[kWarps][kMaxGroup];
  __shared__ float l_s[kWarps][kMaxGroup];
  __shared__ float acc_s[kWarps][kMaxGroup][kDP];

  const int split = blockIdx.x;
  const int64_t hk = blockIdx.y / n_hchunks;
  const int hc = blockIdx.y % n_hchunks;
  const int64_t t = blockIdx.z;
  const int64_t group = n_head / n_head_kv;
  const int64_t h0 = hk * group + int64_t{hc} * kMaxGroup;
  const int gc = static_cast<int>(min(int64_t{kMaxGroup}, group - int64_t{hc} * kMaxGroup));
  const int D = head_dim;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  for (int idx = threadIdx.x; idx < kMaxGroup * kDP; idx += blockDim.x) {
    const int g = idx / kDP, d = idx % kDP;
    q_s[g][d] = g < gc && d < D ? q[((t * n_head) + h0 + g) * D + d] : 0.0f;
  }
  __syncthreads();

  // This split's share of the keys token t sees: [j0, j1).
  const int64_t p = arg_at(pos, t);
  const int64_t lo = sliding_window > 0 ? max(int64_t{0}, p - sliding_window + 1) : 0;
  const int64_t hi = min(p, n_kv - 1);
  const int64_t per = (hi - lo + 1 + n_splits - 1) / n_splits;
  const int64_t j0 = lo + split * per;
  const int64_t j1 = min(hi + 1, j0 + per);

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kDPL];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDPL; ++i) acc[g][i] = 0.0f;
  }

  const auto row_of = [&](int64_t j) { return (j * n_head_kv + hk) * D; };
  decode_stream_keys<kWarps, kDPL>(q_s, gc, k, v, row_of, j0, j1, D, scale, warp, lane, m, l, acc);

#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (lane == 0) {
      m_s[warp][g] = m[g];
      l_s[warp][g] = l[g];
    }
#pragma unroll
    for (int i = 0; i < kDPL; ++i) acc_s[warp][g][lane + 32 * i] = acc[g][i];
  }
  __syncthreads();

  for (int idx = threadIdx.x; idx < gc * D; idx += blockDim.x) {
    const int g = idx / D, d = idx % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, m_s[w][g]);
    float L = 0.0f, A = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (m_s[w][g] == -INFINITY) continue;  // this warp saw no key
      const float c = expf(m_s[w][g] - M);
      L = fmaf(l_s[w][g], c, L);
      A = fmaf(acc_s[w][g][d], c, A);
    }
    const int64_t slot = (t * n_head + h0 + g) * n_splits + split;
    part[slot * D + d] = A;
    if (d == 0) {
      part_ml[slot * 2] = M;
      part_ml[slot * 2 + 1] = L;
    }
  }
}

__global__ void attention_decode_combine(const float* __restrict__ part,
                                         const float* __restrict__ part_ml, int n_splits,
                                         int head_dim, float* __restrict__ out) {
  const int64_t th = blockIdx.x;  // token * n_head + head; out row th has head_dim values
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float M = -INFINITY;
    for (int s = 0; s < n_splits; ++s) M = fmaxf(M, part_ml[(th * n_splits + s) * 2]);
    float L = 0.0f, A = 0.0f;
    for (int s = 0; s < n_splits; ++s) {
      const int64_t slot = th * n_splits + s;
      const float ms = part_ml[slot * 2];
      if (ms == -INFINITY) continue;  // empty split
      const float c = expf(ms - M);
      L = fmaf(part_ml[slot * 2 + 1], c, L);
      A = fmaf(part[slot * head_dim + d], c, A);
    }
    out[th * head_dim + d] = A / L;
  }
}

template <int kDPL>
void launch_partial(const float* q, const float* k, const float* v, const I32Arg& pos,
                    int64_t n_tokens, int64_t n_kv, int64_t n_head, int64_t n_head_kv,
                    int64_t head_dim, int64_t sliding_window, float scale, int n_splits,
                    float* part, float* part_ml, cudaStream_t stream) {
  const int64_t group = n_head / n_head_kv;
  const int n_hchunks = static_cast<int>((group + kMaxGroup - 1) / kMaxGroup);
  const dim3 grid(static_cast<unsigned>(n_splits), static_cast<unsigned>(n_head_kv * n_hchunks),
                  static_cast<unsigned>(n_tokens));
  attention_decode_partial<kDPL><<<grid, kWarps * 32, 0, stream>>>(
      q, k, v, pos, n_kv, n_head, n_head_kv, static_cast<int>(head_dim), sliding_window, scale,
      n_splits, n_hchunks, part, part_ml);
}

}  // namespace

size_t attention_decode_workspace_bytes(int64_t n_tokens, int64_t n_head, int64_t head_dim,
                                        int n_splits) {
  return static_cast<size_t>(n_tokens * n_head * n_splits * (head_dim + 2)) * sizeof(float);
}

void attention_decode(const float* q, const float* k, const float* v, const I32Arg& pos,
                      int64_t n_tokens, int64_t n_kv, int64_t n_head, int64_t n_head_kv,
                      int64_t head_dim, int64_t sliding_window, float scale, int n_splits,
                      void* workspace, float* out, cudaStream_t stream) {
  if (n_tokens < 1 || n_tokens > kDecodeMaxTokens || head_dim < 1 || head_dim > kMaxHeadDim ||
      n_head_kv < 1 || n_head % n_head_kv != 0 || n_splits < 1 || n_kv < 1) {
    fail(StatusCode::kInternal, "cuda attention_decode: n_tokens " + std::to_string(n_tokens) +
                                    ", head_dim " + std::to_string(head_dim) + ", heads " +
                                    std::to_string(n_head) + "/" + std::to_string(n_head_kv) +
                                    ", splits " + std::to_string(n_splits));
  }
  float* part = static_cast<float*>(workspace);
  float* part_ml = part + n_tokens * n_head * n_splits * head_dim;
  if (head_dim <= 32) {
    launch_partial<1>(q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window,
                      scale, n_splits, part, part_ml, stream);
  } else if (head_dim <= 64) {
    launch_partial<2>(q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window,
                      scale, n_splits, part, part_ml, stream);
  } else if (head_dim <= 128) {
    launch_partial<4>(q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window,
                      scale, n_splits, part, part_ml, stream);
  } else {
    launch_partial<8>(q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window,
                      scale, n_splits, part, part_ml, stream);
  }
  check_launch("attention_decode (partial)");
  const int threads = static_cast<int>((head_dim + 31) / 32 * 32);
  attention_decode_combine<<<static_cast<unsigned>(n_tokens * n_head), threads, 0, stream>>>(
      part, part_ml, n_splits, static_cast<int>(head_dim), out);
  check_launch("attention_decode (combine)");
}

}  // namespace shardlm::cuda
