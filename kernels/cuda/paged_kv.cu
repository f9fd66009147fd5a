// CUDA kernels of the paged KV cache (the step engine): store_kv (a step's K/V rows into the
// pools at their slots, converted to the KV dtype bit-exactly as runtime/core/dtype.h does) and
// paged_attention (a whole step of many sequences against the pools, through the block table).
//
// paged_attention runs two kinds of blocks, planned on the host (attention_plan.h):
//   - decode items (sequences with few query tokens this step): flash-decoding as in
//     attention_decode.cu. Block (item x split, kv head x head chunk) streams its slice of the
//     item's visible keys; its 4 warps take chunks of consecutive keys in turn, read each K and
//     V row once for all (up to 8) query heads of the kv group (decode_keys.cuh); the
//     block writes an unnormalized partial (acc, max, sum) and a combine kernel merges the
//     slices and normalizes.
//   - prefill tiles (runs of one sequence's query tokens): as attention_prefill.cu, a block
//     holds 16 query rows (tokens x heads of one kv group) and streams the visible keys through
//     shared memory in tiles of 32 with an online softmax per row, each key's slot looked up
//     once per tile in the block table.
// K/V of the pool dtype (f32 / f16 / bf16) are widened exactly to f32; f32 accumulation. Not
// the shape checks or uploads (runtime/backend/cuda) and not the plan (attention_plan.cpp).
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode_keys.cuh"

namespace shardlm::cuda {

namespace {

// ---- store_kv ----

// f32 -> bf16 bits, as shardlm::f32_to_bf16 (quiet NaN keeps the payload's top bits).
__device__ __forceinline__ uint16_t bf16_bits(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// f32 -> f16 bits, as shardlm::f32_to_f16 (canonical NaN, overflow to inf, subnormals RNE).
__device__ __forceinline__ uint16_t f16_bits(float f) {
  const uint32_t bits = __float_as_uint(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;
  if (abs >= 0x477ff000u) return sign | 0x7c00u;
  if (abs < 0x38800000u) {
    if (abs < 0x33000000u) return sign;
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;
    uint32_t half_mant = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
    return sign | static_cast<uint16_t>(half_mant);
  }
  uint32_t v = abs - 0x38000000u;
  v += 0xfffu + ((v >> 13) & 1u);
  return sign | static_cast<uint16_t>(v >> 13);
}

template <DType kDt>
struct KvStore;
template <>
struct KvStore<DType::kF32> {
  using T = float;
  static __device__ __forceinline__ float conv(float x) { return x; }
};
template <>
struct KvStore<DType::kF16> {
  using T = uint16_t;
  static __device__ __forceinline__ uint16_t conv(float x) { return f16_bits(x); }
};
template <>
struct KvStore<DType::kBF16> {
  using T = uint16_t;
  static __device__ __forceinline__ uint16_t conv(float x) { return bf16_bits(x); }
};
// dtype.h's f32_to_f8e4m3, bit for bit: round to nearest even, +-448 beyond the range (inf
// included), NaN -> 0x7f with the sign.
__device__ __forceinline__ uint8_t f8e4m3_bits(float f) {
  const uint32_t bits = __float_as_uint(f);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7fu;
  if (abs >= 0x43e00000u) return sign | 0x7eu;
  if (abs < 0x3c800000u) {  // subnormal steps of 2^-9 (x 512 is exact)
    return sign | static_cast<uint8_t>(__float2uint_rn(__uint_as_float(abs) * 512.0f));
  }
  const uint32_t v = abs + 0x7ffffu + ((abs >> 20) & 1u);
  return sign | static_cast<uint8_t>((v >> 20) - (120u << 3));
}
template <>
struct KvStore<DType::kF8E4M3> {
  using T = uint8_t;
  static __device__ __forceinline__ uint8_t conv(float x) { return f8e4m3_bits(x); }
};

// One block per token; its threads stride over the row.
template <DType kDt>
__global__ void store_kv_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                const int64_t* __restrict__ slots, int64_t row,
                                typename KvStore<kDt>::T* __restrict__ k_pool,
                                typename KvStore<kDt>::T* __restrict__ v_pool) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slots[t];
  if (slot < 0) return;
  const float* ks = k + t * row;
  const float* vs = v + t * row;
  auto* kd = k_pool + slot * row;
  auto* vd = v_pool + slot * row;
  for (int64_t i = threadIdx.x; i < row; i += blockDim.x) {
    kd[i] = KvStore<kDt>::conv(ks[i]);
    vd[i] = KvStore<kDt>::conv(vs[i]);
  }
}

// ---- paged attention ----

constexpr int kWarps = 4;
constexpr int kMaxGroup = kDecodeMaxGroup;  // decode: query heads per block
constexpr int kRowsPerWarp = 4;
constexpr int kRows = kWarps * kRowsPerWarp;  // prefill: query rows per block
constexpr int kTile = 32;                     // prefill: keys per shared-memory tile
static_assert(kRows == kPagedTileRows, "attention_plan.h plans tiles of kRows query rows");

// Slot of position j through one sequence's block table. 32-bit division: positions are int32,
// and a 64-bit one is a call whose saved registers spill.
__device__ __forceinline__ int64_t slot_of(const int32_t* bt, int j, int block_size) {
  return static_cast<int64_t>(bt[j / block_size]) * block_size + j % block_size;
}

template <typename KV, int kDPL>  // head_dim elements per lane: head_dim <= 32 * kDPL
__global__ void __launch_bounds__(kWarps * 32)
    paged_decode_partial(const float* __restrict__ q, const KV* __restrict__ k,
                         const KV* __restrict__ v, PagedStep st, int64_t n_head, int64_t n_head_kv,
                         int group, int head_dim, int64_t sliding_window, float scale,
                         int n_hchunks, float* __restrict__ part, float* __restrict__ part_ml) {
  constexpr int kDP = kDPL * 32;
  __shared__ float q_s[kMaxGroup][kDP];
  __shared__ float m_s[kWarps][kMaxGroup];
  __shared__ float l_s[kWarps][kMaxGroup];
  __shared__ float acc_s[kWarps][kMaxGroup][kDP];

  const int n_splits = st.n_splits;
  const int bs = static_cast<int>(st.block_size);
  const int64_t item = static_cast<int>(blockIdx.x) / n_splits;
  const int split = static_cast<int>(blockIdx.x) % n_splits;
  const int64_t hk = static_cast<int>(blockIdx.y) / n_hchunks;
  const int hc = static_cast<int>(blockIdx.y) % n_hchunks;
  const int64_t t = st.decode_token[item];
  const int32_t* bt = st.block_table + st.decode_seq[item] * st.max_blocks;
  const int64_t h0 = hk * group + int64_t{hc} * kMaxGroup;
  const int gc = min(kMaxGroup, group - hc * kMaxGroup);
  const int D = head_dim;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  for (int idx = threadIdx.x; idx < kMaxGroup * kDP; idx += blockDim.x) {
    const int g = idx / kDP, d = idx % kDP;
    q_s[g][d] = g < gc && d < D ? q[((t * n_head) + h0 + g) * D + d] : 0.0f;
  }
  __syncthreads();

  // This split's share of the keys token t sees: [j0, j1).
  const int p = st.pos[t];
  const int lo = sliding_window > 0 ? static_cast<int>(max(int64_t{0}, p - sliding_window + 1)) : 0;
  const int per = (p - lo + 1 + n_splits - 1) / n_splits;
  const int j0 = lo + split * per;
  const int j1 = min(p + 1, j0 + per);

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kDPL];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDPL; ++i) acc[g][i] = 0.0f;
  }

  const auto row_of = [&](int64_t j) {
    return (slot_of(bt, static_cast<int>(j), bs) * n_head_kv + hk) * D;
  };
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
    const int64_t slot = (item * n_head + h0 + g) * n_splits + split;
    part[slot * D + d] = A;
    if (d == 0) {
      part_ml[slot * 2] = M;
      part_ml[slot * 2 + 1] = L;
    }
  }
}

// One block per (decode item, head): merges the splits and writes the token's output row.
__global__ void paged_decode_combine(const float* __restrict__ part,
                                     const float* __restrict__ part_ml,
                                     const int32_t* __restrict__ decode_token, int n_head,
                                     int n_splits, int head_dim, float* __restrict__ out) {
  const int ihx = static_cast<int>(blockIdx.x);  // item * n_head + head
  const int64_t ih = ihx;
  const int64_t out_row = int64_t{decode_token[ihx / n_head]} * n_head + ihx % n_head;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float M = -INFINITY;
    for (int s = 0; s < n_splits; ++s) M = fmaxf(M, part_ml[(ih * n_splits + s) * 2]);
    float L = 0.0f, A = 0.0f;
    for (int s = 0; s < n_splits; ++s) {
      const int64_t slot = ih * n_splits + s;
      const float ms = part_ml[slot * 2];
      if (ms == -INFINITY) continue;  // empty split
      const float c = expf(ms - M);
      L = fmaf(part_ml[slot * 2 + 1], c, L);
      A = fmaf(part[slot * head_dim + d], c, A);
    }
    out[out_row * head_dim + d] = A / L;
  }
}

struct RowMap {
  int heads_per_block;   // query heads of one kv group in a block (<= kRows)
  int tokens_per_block;  // kRows / heads_per_block
  int n_hchunks;         // blocks along the kv group
};

template <int kDPL>
size_t prefill_smem_bytes() {
  constexpr int kDP = kDPL * 32;
  return sizeof(float) * (kRows * kDP + kTile * (kDP + 1) + kTile * kDP);
}

template <typename KV, int kDPL>
__global__ void __launch_bounds__(kWarps * 32)
    paged_prefill_kernel(const float* __restrict__ q, const KV* __restrict__ k,
                         const KV* __restrict__ v, PagedStep st, int64_t n_head, int64_t n_head_kv,
                         int group, int head_dim, int64_t sliding_window, float scale, RowMap map,
                         float* __restrict__ out) {
  constexpr int kDP = kDPL * 32;
  extern __shared__ float smem[];
  float* q_s = smem;                     // [kRows][kDP]
  float* k_s = q_s + kRows * kDP;        // [kTile][kDP + 1] (padded: lane j reads row j)
  float* v_s = k_s + kTile * (kDP + 1);  // [kTile][kDP]
  __shared__ int64_t row_pos[kRows];     // -1 for rows past the tile's end
  __shared__ int64_t row_out[kRows];     // output row (token * n_head + head)
  __shared__ int64_t key_slot[kTile];    // the current tile's slots, -1 for keys not loaded

  const int D = head_dim;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int bs = static_cast<int>(st.block_size);
  const int64_t tile = blockIdx.x;
  const int32_t* bt = st.block_table + int64_t{st.tile_seq[tile]} * st.max_blocks;
  const int64_t t_first = st.tile_first[tile], t_end = st.tile_end[tile];
  const int64_t hk = static_cast<int>(blockIdx.y) / map.n_hchunks;
  const int g0 = static_cast<int>(blockIdx.y) % map.n_hchunks * map.heads_per_block;

  if (threadIdx.x < kRows) {
    const int r = threadIdx.x;
    const int64_t t = t_first + r / map.heads_per_block;
    const int g = g0 + r % map.heads_per_block;
    const bool valid = r < map.tokens_per_block * map.heads_per_block && t < t_end && g < group;
    row_pos[r] = valid ? st.pos[t] : -1;
    row_out[r] = valid ? t * n_head + hk * group + g : -1;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kRows * kDP; idx += blockDim.x) {
    const int r = idx / kDP, d = idx % kDP;
    q_s[idx] = row_out[r] >= 0 && d < D ? q[row_out[r] * D + d] : 0.0f;
  }

  // Keys any row of the block sees: [j_lo, j_hi].
  int64_t j_lo = INT64_MAX, j_hi = -1;
  for (int r = 0; r < kRows; ++r) {
    const int64_t p = row_pos[r];
    if (p < 0) continue;
    j_hi = max(j_hi, p);
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

  for (int64_t j0 = j_hi < 0 ? 0 : j_lo / kTile * kTile; j0 <= j_hi; j0 += kTile) {
    __syncthreads();  // the previous tile is consumed (and q_s is written, first time round)
    if (threadIdx.x < kTile) {
      const int64_t j = j0 + threadIdx.x;
      key_slot[threadIdx.x] = j >= j_lo && j <= j_hi ? slot_of(bt, static_cast<int>(j), bs) : -1;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < kTile * kDP; idx += blockDim.x) {
      const int jj = idx / kDP, d = idx % kDP;
      const int64_t slot = key_slot[jj];
      const bool in = slot >= 0 && d < D;
      const int64_t src = (slot * n_head_kv + hk) * D + d;
      k_s[jj * (kDP + 1) + d] = in ? to_f32(k[src]) : 0.0f;
      v_s[jj * kDP + d] = in ? to_f32(v[src]) : 0.0f;
    }
    __syncthreads();

#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t p = row_pos[r];
      if (p < 0) continue;  // uniform over the warp
      const int64_t j = j0 + lane;
      const bool visible = j <= p && (sliding_window <= 0 || p - j < sliding_window);
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

struct PagedArgs {
  const float* q;
  int64_t n_head;
  const void* k_pool;
  const void* v_pool;
  int64_t n_head_kv;
  int64_t head_dim;
  const PagedStep* step;
  int64_t sliding_window;
  float scale;
  void* workspace;
  float* out;
  cudaStream_t stream;
};

template <typename KV, int kDPL>
void launch_paged(const PagedArgs& a) {
  const PagedStep& st = *a.step;
  const KV* k = static_cast<const KV*>(a.k_pool);
  const KV* v = static_cast<const KV*>(a.v_pool);
  const int D = static_cast<int>(a.head_dim);
  const int group = static_cast<int>(a.n_head / a.n_head_kv);
  if (st.n_decode > 0) {
    const int n_hchunks = (group + kMaxGroup - 1) / kMaxGroup;
    float* part = static_cast<float*>(a.workspace);
    float* part_ml = part + st.n_decode * a.n_head * st.n_splits * a.head_dim;
    const dim3 grid(static_cast<unsigned>(st.n_decode * st.n_splits),
                    static_cast<unsigned>(a.n_head_kv * n_hchunks));
    paged_decode_partial<KV, kDPL>
        <<<grid, kWarps * 32, 0, a.stream>>>(a.q, k, v, st, a.n_head, a.n_head_kv, group, D,
                                             a.sliding_window, a.scale, n_hchunks, part, part_ml);
    check_launch("paged_attention (decode partial)");
    const int threads = (D + 31) / 32 * 32;
    paged_decode_combine<<<static_cast<unsigned>(st.n_decode * a.n_head), threads, 0, a.stream>>>(
        part, part_ml, st.decode_token, static_cast<int>(a.n_head), st.n_splits, D, a.out);
    check_launch("paged_attention (decode combine)");
  }
  if (st.n_tiles > 0) {
    RowMap map{};
    map.heads_per_block = group < kRows ? group : kRows;
    map.tokens_per_block = kRows / map.heads_per_block;
    map.n_hchunks = (group + map.heads_per_block - 1) / map.heads_per_block;
    const dim3 grid(static_cast<unsigned>(st.n_tiles),
                    static_cast<unsigned>(a.n_head_kv * map.n_hchunks));
    const size_t smem = prefill_smem_bytes<kDPL>();
    if (smem > 48 * 1024) {
      const cudaError_t e =
          cudaFuncSetAttribute(paged_prefill_kernel<KV, kDPL>,
                               cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
      if (e != cudaSuccess) {
        fail(StatusCode::kBackend, std::string("cuda paged_attention: ") + std::to_string(smem) +
                                       " bytes of shared memory: " + cudaGetErrorString(e));
      }
    }
    paged_prefill_kernel<KV, kDPL><<<grid, kWarps * 32, smem, a.stream>>>(
        a.q, k, v, st, a.n_head, a.n_head_kv, group, D, a.sliding_window, a.scale, map, a.out);
    check_launch("paged_attention (prefill)");
  }
}

template <typename KV>
void launch_paged_dtype(const PagedArgs& a) {
  if (a.head_dim <= 32) {
    launch_paged<KV, 1>(a);
  } else if (a.head_dim <= 64) {
    launch_paged<KV, 2>(a);
  } else if (a.head_dim <= 128) {
    launch_paged<KV, 4>(a);
  } else {
    launch_paged<KV, 8>(a);
  }
}

}  // namespace

void store_kv(const float* k, const float* v, const int64_t* slots, int64_t n_tokens, int64_t row,
              DType kv_dtype, void* k_pool, void* v_pool, cudaStream_t stream) {
  if (n_tokens < 0 || n_tokens > INT32_MAX || row < 1) {
    fail(StatusCode::kInternal,
         "cuda store_kv: n_tokens " + std::to_string(n_tokens) + ", row " + std::to_string(row));
  }
  if (n_tokens == 0) return;
  const int threads = row >= 256 ? 256 : static_cast<int>((row + 31) / 32 * 32);
  const unsigned grid = static_cast<unsigned>(n_tokens);
  switch (kv_dtype) {
    case DType::kF32:
      store_kv_kernel<DType::kF32><<<grid, threads, 0, stream>>>(
          k, v, slots, row, static_cast<float*>(k_pool), static_cast<float*>(v_pool));
      break;
    case DType::kF16:
      store_kv_kernel<DType::kF16><<<grid, threads, 0, stream>>>(
          k, v, slots, row, static_cast<uint16_t*>(k_pool), static_cast<uint16_t*>(v_pool));
      break;
    case DType::kBF16:
      store_kv_kernel<DType::kBF16><<<grid, threads, 0, stream>>>(
          k, v, slots, row, static_cast<uint16_t*>(k_pool), static_cast<uint16_t*>(v_pool));
      break;
    case DType::kF8E4M3:
      store_kv_kernel<DType::kF8E4M3><<<grid, threads, 0, stream>>>(
          k, v, slots, row, static_cast<uint8_t*>(k_pool), static_cast<uint8_t*>(v_pool));
      break;
    case DType::kInt8:  // not KV types: the backend refuses such pools
    case DType::kInt4:
    case DType::kInt4G128:
      fail(StatusCode::kInternal, "cuda store_kv: a quantized weight type is not a KV type");
  }
  check_launch("store_kv");
}

size_t paged_attention_workspace_bytes(int64_t n_decode, int64_t n_head, int64_t head_dim,
                                       int n_splits) {
  return static_cast<size_t>(n_decode * n_head * n_splits * (head_dim + 2)) * sizeof(float);
}

void paged_attention(const float* q, int64_t n_head, const void* k_pool, const void* v_pool,
                     DType kv_dtype, int64_t n_head_kv, int64_t head_dim, const PagedStep& step,
                     int64_t sliding_window, float scale, void* workspace, float* out,
                     cudaStream_t stream) {
  if (head_dim < 1 || head_dim > kMaxHeadDim || n_head_kv < 1 || n_head % n_head_kv != 0 ||
      n_head / n_head_kv > 65535 || step.block_size < 1 || step.n_splits < 1 || step.n_decode < 0 ||
      step.n_tiles < 0 || step.n_decode * step.n_splits > INT32_MAX || step.n_tiles > INT32_MAX ||
      step.n_decode * n_head > INT32_MAX || n_head > 65535 ||
      (step.n_decode > 0 && workspace == nullptr)) {
    fail(StatusCode::kInternal,
         "cuda paged_attention: head_dim " + std::to_string(head_dim) + ", heads " +
             std::to_string(n_head) + "/" + std::to_string(n_head_kv) + ", block_size " +
             std::to_string(step.block_size) + ", decode items " + std::to_string(step.n_decode) +
             " x " + std::to_string(step.n_splits) + " splits, tiles " +
             std::to_string(step.n_tiles));
  }
  const PagedArgs a{q,     n_head,         k_pool, v_pool,    n_head_kv, head_dim,
                    &step, sliding_window, scale,  workspace, out,       stream};
  switch (kv_dtype) {
    case DType::kF32:
      launch_paged_dtype<float>(a);
      break;
    case DType::kF16:
      launch_paged_dtype<__half>(a);
      break;
    case DType::kBF16:
      launch_paged_dtype<__nv_bfloat16>(a);
      break;
    case DType::kF8E4M3:
      launch_paged_dtype<__nv_fp8_e4m3>(a);
      break;
    case DType::kInt8:  // not KV types: the backend refuses such pools
    case DType::kInt4:
    case DType::kInt4G128:
      fail(StatusCode::kInternal, "cuda paged_attention: a quantized weight type is not a KV type");
  }
}

}  // namespace shardlm::cuda
