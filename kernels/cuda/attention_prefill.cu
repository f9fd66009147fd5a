// CUDA flash-attention-style causal prefill over one sequence's f32 KV cache (GQA, optional
// sliding window). A block owns 16 query rows: a few tokens times the query heads of one kv
// group (so every K/V tile it loads serves all of them). Keys stream through shared memory in
// tiles of 32; each warp owns 4 rows and keeps an online softmax per row (lane j scores key j
// of the tile, then every lane accumulates its head_dim slice of P @ V). The score matrix is
// never written out. SIMT f32 arithmetic: exact enough to compare with kernels/ref at the f32
// tolerance; tensor-core attention is future work (prefill time is dominated by the GEMMs).
#include <cmath>

#include "kernels/cuda/common.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kRows = kWarps * kRowsPerWarp;  // query rows per block
constexpr int kTile = 32;                     // keys per shared-memory tile (one per lane)

struct RowMap {
  int heads_per_block;   // query heads of one kv group in a block (<= kRows)
  int tokens_per_block;  // kRows / heads_per_block
  int n_hchunks;         // blocks along the kv group
};

template <int kDPL>
size_t smem_bytes() {
  constexpr int kDP = kDPL * 32;
  return sizeof(float) * (kRows * kDP + kTile * (kDP + 1) + kTile * kDP);
}

template <int kDPL>
__global__ void __launch_bounds__(kWarps * 32)
    attention_prefill_kernel(const float* __restrict__ q, const float* __restrict__ k,
                             const float* __restrict__ v, I32Arg pos, int64_t n_tokens,
                             int64_t n_kv, int64_t n_head, int64_t n_head_kv, int head_dim,
                             int64_t sliding_window, float scale, RowMap map,
                             float* __restrict__ out) {
  constexpr int kDP = kDPL * 32;
  extern __shared__ float smem[];
  float* q_s = smem;                     // [kRows][kDP]
  float* k_s = q_s + kRows * kDP;        // [kTile][kDP + 1] (padded: lane j reads row j)
  float* v_s = k_s + kTile * (kDP + 1);  // [kTile][kDP]
  __shared__ int64_t row_pos[kRows];     // -1 for rows past the end
  __shared__ int64_t row_out[kRows];     // output row (token * n_head + head)

  const int D = head_dim;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t hk = blockIdx.y / map.n_hchunks;
  const int64_t group = n_head / n_head_kv;
  const int64_t g0 = int64_t{blockIdx.y % map.n_hchunks} * map.heads_per_block;

  if (threadIdx.x < kRows) {
    const int r = threadIdx.x;
    const int64_t t = int64_t{blockIdx.x} * map.tokens_per_block + r / map.heads_per_block;
    const int64_t g = g0 + r % map.heads_per_block;
    const bool valid = r < map.tokens_per_block * map.heads_per_block && t < n_tokens && g < group;
    row_pos[r] = valid ? arg_at(pos, t) : -1;
    row_out[r] = valid ? t * n_head + hk * group + g : -1;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kRows * kDP; idx += blockDim.x) {
    const int r = idx / kDP, d = idx % kDP;
    q_s[idx] = row_out[r] >= 0 && d < D ? q[row_out[r] * D + d] : 0.0f;
  }

  // Keys any row of the block sees: [j_lo, j_hi].
  int64_t j_lo = n_kv, j_hi = -1;
  for (int r = 0; r < kRows; ++r) {
    const int64_t p = row_pos[r];
    if (p < 0) continue;
    j_hi = max(j_hi, min(p, n_kv - 1));
    j_lo = min(j_lo, sliding_window > 0 ? max(int64_t{0}, p - sliding_window + 1) : int64_t{0});
  }

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kDPL];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    m[rr] = -INFINITY;
    l[rr] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDPL; ++i) acc[rr][i] = 0.0f;
  }

  for (int64_t j0 = j_lo / kTile * kTile; j0 <= j_hi; j0 += kTile) {
    __syncthreads();  // the previous tile is consumed (and q_s is written, first time round)
    for (int idx = threadIdx.x; idx < kTile * kDP; idx += blockDim.x) {
      const int jj = idx / kDP, d = idx % kDP;
      const int64_t j = j0 + jj;
      const bool in = j < n_kv && d < D;
      const int64_t src = (j * n_head_kv + hk) * D + d;
      k_s[jj * (kDP + 1) + d] = in ? k[src] : 0.0f;
      v_s[jj * kDP + d] = in ? v[src] : 0.0f;
    }
    __syncthreads();

#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t p = row_pos[r];
      if (p < 0) continue;  // uniform over the warp
      const int64_t j = j0 + lane;
      const bool visible = j < n_kv && j <= p && (sliding_window <= 0 || p - j < sliding_window);
      float s = -INFINITY;
      if (visible) {
        const float* qr = q_s + r * kDP;
        const float* kr = k_s + lane * (kDP + 1);
        float dot = 0.0f;
        for (int d = 0; d < D; ++d) dot = fmaf(qr[d], kr[d], dot);
        s = dot * scale;
      }
      const float tile_max = warp_max(s);
      if (tile_max == -INFINITY) continue;  // nothing visible in this tile for this row
      const float m_new = fmaxf(m[rr], tile_max);
      const float corr = expf(m[rr] - m_new);
      const float pj = visible ? expf(s - m_new) : 0.0f;
      l[rr] = l[rr] * corr + warp_sum(pj);
#pragma unroll
      for (int i = 0; i < kDPL; ++i) acc[rr][i] *= corr;
      for (int jj = 0; jj < kTile; ++jj) {
        const float pk = __shfl_sync(0xffffffffu, pj, jj);
        if (pk == 0.0f) continue;  // masked key (uniform: pk is the same on every lane)
#pragma unroll
        for (int i = 0; i < kDPL; ++i)
          acc[rr][i] = fmaf(pk, v_s[jj * kDP + lane + 32 * i], acc[rr][i]);
      }
      m[rr] = m_new;
    }
  }

#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int r = warp * kRowsPerWarp + rr;
    if (row_out[r] < 0) continue;
#pragma unroll
    for (int i = 0; i < kDPL; ++i) {
      const int d = lane + 32 * i;
      if (d < D) out[row_out[r] * D + d] = acc[rr][i] / l[rr];
    }
  }
}

template <int kDPL>
void launch(const float* q, const float* k, const float* v, const I32Arg& pos, int64_t n_tokens,
            int64_t n_kv, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
            int64_t sliding_window, float scale, float* out, cudaStream_t stream) {
  const int64_t group = n_head / n_head_kv;
  RowMap map{};
  map.heads_per_block = static_cast<int>(group < kRows ? group : kRows);
  map.tokens_per_block = kRows / map.heads_per_block;
  map.n_hchunks = static_cast<int>((group + map.heads_per_block - 1) / map.heads_per_block);
  const int64_t n_tiles = (n_tokens + map.tokens_per_block - 1) / map.tokens_per_block;
  const dim3 grid(static_cast<unsigned>(n_tiles), static_cast<unsigned>(n_head_kv * map.n_hchunks));
  const size_t smem = smem_bytes<kDPL>();
  if (smem > 48 * 1024) {
    const cudaError_t e =
        cudaFuncSetAttribute(attention_prefill_kernel<kDPL>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) {
      fail(StatusCode::kBackend, std::string("cuda attention_prefill: ") + std::to_string(smem) +
                                     " bytes of shared memory: " + cudaGetErrorString(e));
    }
  }
  attention_prefill_kernel<kDPL><<<grid, kWarps * 32, smem, stream>>>(
      q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, static_cast<int>(head_dim), sliding_window,
      scale, map, out);
}

}  // namespace

void attention_prefill(const float* q, const float* k, const float* v, const I32Arg& pos,
                       int64_t n_tokens, int64_t n_kv, int64_t n_head, int64_t n_head_kv,
                       int64_t head_dim, int64_t sliding_window, float scale, float* out,
                       cudaStream_t stream) {
  if (n_tokens < 1 || head_dim < 1 || head_dim > kMaxHeadDim || n_head_kv < 1 ||
      n_head % n_head_kv != 0 || n_kv < 1) {
    fail(StatusCode::kInternal, "cuda attention_prefill: n_tokens " + std::to_string(n_tokens) +
                                    ", head_dim " + std::to_string(head_dim) + ", heads " +
                                    std::to_string(n_head) + "/" + std::to_string(n_head_kv));
  }
  if (head_dim <= 32) {
    launch<1>(q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window, scale, out,
              stream);
  } else if (head_dim <= 64) {
    launch<2>(q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window, scale, out,
              stream);
  } else if (head_dim <= 128) {
    launch<4>(q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window, scale, out,
              stream);
  } else {
    launch<8>(q, k, v, pos, n_tokens, n_kv, n_head, n_head_kv, head_dim, sliding_window, scale, out,
              stream);
  }
  check_launch("attention_prefill");
}

}  // namespace shardlm::cuda
