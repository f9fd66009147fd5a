// CudaBackend's paged-KV ops (the step engine): store_kv and paged_attention, with the same
// shape checks as the cpu backend plus a check of every block the step reads (a bad block id
// is an Error, never a read outside the pool), then kernels/cuda/paged_kv.cu launches.
//
// The host arrays (slots, positions, seq starts, block table, and the launch plan built from
// them) go to device buffers of the backend's workspace. Eagerly they are copied from pageable
// memory (the call returns once staged), once per distinct content: every layer of a step
// reuses the first layer's copy. Under CUDA graph capture (a single-token decode step at
// tp = 1) they are copied into pinned staging (pinned_staging.h) and the capture records a
// pinned -> device copy, once per step, which runs when the graph is launched; so paged steps
// work as graphs, with a stable topology (two copy nodes per step) that cudaGraphExecUpdate
// can update. Not the kernels (kernels/cuda) and not the plan (kernels/cuda/attention_plan.h).
#include <algorithm>
#include <cstring>
#include <string>

#include "runtime/backend/cuda/cuda_backend_impl.h"
#include "runtime/core/status.h"

namespace shardlm {

namespace {

#define SHARDLM_CUDA_REQUIRE(ok, op, what)                                               \
  do {                                                                                   \
    if (!(ok)) fail(StatusCode::kInternal, std::string("cuda ") + (op) + ": " + (what)); \
  } while (0)

void check_f32(const Tensor& t, const char* op, const char* name) {
  SHARDLM_CUDA_REQUIRE(t.dtype == DType::kF32 && t.data != nullptr, op,
                       std::string(name) + " must be a non-null f32 tensor, got " + t.describe());
}

bool same_dims(const Tensor& a, const Tensor& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.dim(i) != b.dim(i)) return false;
  }
  return true;
}

template <typename T>
bool same_values(std::span<const T> a, const std::vector<T>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

std::string str(int64_t v) {
  return std::to_string(v);
}

// Upload images are padded to this many int32 values, so the copy a captured step records
// keeps its size while a block table grows.
constexpr size_t kImagePad = 64;

}  // namespace

const void* CudaBackend::upload_args(Workspace w, const void* src, size_t bytes, ArgUpload& cache) {
  const bool capturing = graph_->capturing();
  void* dev = workspace(w, bytes);
  const bool same_bytes = cache.valid && cache.dev == dev && cache.host.size() == bytes &&
                          std::memcmp(cache.host.data(), src, bytes) == 0;
  // A captured step must record its own copy (the graph may be replayed without the steps that
  // copied before it); an eager op may reuse an eager copy or one of a graph that was launched.
  const bool in_place = capturing ? cache.epoch == capture_epoch_
                                  : (cache.epoch == 0 || cache.epoch == landed_epoch_);
  if (same_bytes && in_place) return dev;
  if (capturing) {
    const void* staged = staging_.put(src, bytes);
    cuda_check(cudaMemcpyAsync(dev, staged, bytes, cudaMemcpyHostToDevice, stream_),
               "recording the upload of a step's slots / block table");
    cache.epoch = capture_epoch_;
  } else {
    staging_.reserve(4 * bytes + 256);  // so a later capture of such a step does not allocate
    // Pageable source: returns once staged. Ordered on the stream after earlier readers.
    cuda_check(cudaMemcpyAsync(dev, src, bytes, cudaMemcpyHostToDevice, stream_),
               "uploading a step's slots / block table");
    cache.epoch = 0;
  }
  const auto* b = static_cast<const uint8_t*>(src);
  cache.host.assign(b, b + bytes);
  cache.dev = dev;
  cache.valid = true;
  return dev;
}

void CudaBackend::store_kv(const Tensor& k, const Tensor& v, std::span<const int64_t> slots,
                           const Tensor& k_pool, const Tensor& v_pool) {
  Op op(*this);
  check_f32(k, "store_kv", "k");
  check_f32(v, "store_kv", "v");
  const int64_t n_tokens = static_cast<int64_t>(slots.size());
  SHARDLM_CUDA_REQUIRE(
      k.ndim == 3 && k.dim(0) == n_tokens && same_dims(k, v) && k_pool.ndim == 3 &&
          k_pool.data != nullptr && v_pool.data != nullptr && k_pool.dim(1) == k.dim(1) &&
          k_pool.dim(2) == k.dim(2) && same_dims(k_pool, v_pool) && v_pool.dtype == k_pool.dtype,
      "store_kv",
      "k " + k.describe() + ", v " + v.describe() + ", k_pool " + k_pool.describe() + ", v_pool " +
          v_pool.describe() + " for " + str(n_tokens) + " slots");
  for (int64_t s : slots) {
    SHARDLM_CUDA_REQUIRE(s < k_pool.dim(0), "store_kv",
                         "slot " + str(s) + " outside the pool of " + str(k_pool.dim(0)));
  }
  ++stats_.store_kv_calls;
  if (n_tokens == 0) return;
  const auto* dev = static_cast<const int64_t*>(
      upload_args(kSlots, slots.data(), slots.size() * sizeof(int64_t), slots_upload_));
  cuda::store_kv(k.as<float>(), v.as<float>(), dev, n_tokens, k.dim(1) * k.dim(2), k_pool.dtype,
                 k_pool.data, v_pool.data, stream_);
}

const CudaBackend::PagedLayoutCache& CudaBackend::paged_layout(const StepLayout& layout,
                                                               int64_t n_head, int64_t n_head_kv,
                                                               int64_t sliding_window,
                                                               int64_t n_slots) {
  PagedLayoutCache& c = paged_layout_;
  const int64_t bs = layout.block_size, mb = layout.max_blocks, n_blocks = n_slots / bs;
  const int64_t window = sliding_window > 0 ? sliding_window : 0;
  if (c.valid && c.max_blocks == mb && c.block_size == bs && c.n_head == n_head &&
      c.n_head_kv == n_head_kv && c.window == window && c.n_blocks == n_blocks &&
      same_values(layout.positions, c.positions) && same_values(layout.seq_starts, c.seq_starts) &&
      same_values(layout.block_table, c.block_table)) {
    return c;
  }
  c.valid = false;

  // Every block a query can read must be a block of the pool.
  const std::span<const int32_t> pos = layout.positions, starts = layout.seq_starts;
  const int64_t n_tokens = static_cast<int64_t>(pos.size());
  const int64_t n_seqs = static_cast<int64_t>(starts.size()) - 1;
  SHARDLM_CUDA_REQUIRE(starts[0] == 0 && starts[static_cast<size_t>(n_seqs)] == n_tokens,
                       "paged_attention",
                       "seq_starts must run from 0 to the " + str(n_tokens) + " tokens, got " +
                           str(starts[0]) + " .. " + str(starts[static_cast<size_t>(n_seqs)]));
  for (int64_t s = 0; s < n_seqs; ++s) {
    const int32_t first = starts[static_cast<size_t>(s)], end = starts[static_cast<size_t>(s + 1)];
    SHARDLM_CUDA_REQUIRE(first <= end && end <= n_tokens, "paged_attention",
                         "seq_starts of sequence " + str(s) + " are [" + str(first) + ", " +
                             str(end) + ") for " + str(n_tokens) + " tokens");
    int64_t hi = -1, lo = INT64_MAX;
    for (int32_t t = first; t < end; ++t) {
      const int64_t p = pos[static_cast<size_t>(t)];
      SHARDLM_CUDA_REQUIRE(p >= 0, "paged_attention",
                           "position " + str(p) + " of token " + str(t) + " is negative");
      hi = std::max(hi, p);
      lo = std::min(lo, window > 0 ? std::max<int64_t>(0, p - window + 1) : int64_t{0});
    }
    if (hi < 0) continue;
    SHARDLM_CUDA_REQUIRE(hi / bs < mb, "paged_attention",
                         "sequence " + str(s) + " reads position " + str(hi) + ", beyond its " +
                             str(mb) + " blocks of " + str(bs));
    for (int64_t i = lo / bs; i <= hi / bs; ++i) {
      const int64_t b = layout.block_table[static_cast<size_t>(s * mb + i)];
      SHARDLM_CUDA_REQUIRE(b >= 0 && b < n_blocks, "paged_attention",
                           "block table entry " + str(i) + " of sequence " + str(s) + " is " +
                               str(b) + ", outside the pool of " + str(n_blocks) + " blocks");
    }
  }

  c.plan = cuda::plan_paged_attention(pos, starts, n_head, n_head_kv, window, info_.sm_count);
  const cuda::PagedAttentionPlan& p = c.plan;
  std::vector<int32_t>& img = c.image;
  img.clear();
  auto append = [&](std::span<const int32_t> a) {
    const size_t off = img.size();
    img.insert(img.end(), a.begin(), a.end());
    return off;
  };
  c.off_pos = append(pos);
  c.off_bt = append(layout.block_table);
  c.off_dec_tok = append(p.decode_token);
  c.off_dec_seq = append(p.decode_seq);
  c.off_tile_seq = append(p.tile_seq);
  c.off_tile_first = append(p.tile_first);
  c.off_tile_end = append(p.tile_end);
  img.resize((img.size() + kImagePad - 1) / kImagePad * kImagePad, 0);

  c.positions.assign(pos.begin(), pos.end());
  c.seq_starts.assign(starts.begin(), starts.end());
  c.block_table.assign(layout.block_table.begin(), layout.block_table.end());
  c.max_blocks = mb;
  c.block_size = bs;
  c.n_head = n_head;
  c.n_head_kv = n_head_kv;
  c.window = window;
  c.n_blocks = n_blocks;
  c.valid = true;
  return c;
}

void CudaBackend::paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                                  const StepLayout& layout, int64_t sliding_window, float scale,
                                  const Tensor& out) {
  Op op(*this);
  check_f32(q, "paged_attention", "q");
  check_f32(out, "paged_attention", "out");
  const int64_t n_tokens = static_cast<int64_t>(layout.positions.size());
  const int64_t n_seqs = static_cast<int64_t>(layout.seq_starts.size()) - 1;
  SHARDLM_CUDA_REQUIRE(
      q.ndim == 3 && q.dim(0) == n_tokens && k_pool.ndim == 3 && k_pool.data != nullptr &&
          v_pool.data != nullptr && same_dims(k_pool, v_pool) && v_pool.dtype == k_pool.dtype &&
          k_pool.dim(1) > 0 && q.dim(2) == k_pool.dim(2) && q.dim(1) % k_pool.dim(1) == 0 &&
          out.numel() == q.numel(),
      "paged_attention",
      "q " + q.describe() + ", k_pool " + k_pool.describe() + ", v_pool " + v_pool.describe() +
          ", out " + out.describe() + " for " + str(n_tokens) + " positions");
  const int64_t n_head = q.dim(1), n_head_kv = k_pool.dim(1), head_dim = q.dim(2);
  SHARDLM_CUDA_REQUIRE(head_dim <= cuda::kMaxHeadDim, "paged_attention",
                       "head_dim " + str(head_dim) + " > " + str(cuda::kMaxHeadDim));
  SHARDLM_CUDA_REQUIRE(
      layout.block_size > 0 && k_pool.dim(0) % layout.block_size == 0 && n_seqs >= 1 &&
          layout.max_blocks >= 0 &&
          static_cast<int64_t>(layout.block_table.size()) == n_seqs * layout.max_blocks,
      "paged_attention",
      "layout of " + str(n_seqs) + " sequences, block_size " + str(layout.block_size) +
          ", max_blocks " + str(layout.max_blocks) + ", block table of " +
          str(static_cast<int64_t>(layout.block_table.size())) + " entries, pool " +
          k_pool.describe());
  ++stats_.paged_attention_calls;
  if (n_tokens == 0) return;

  const PagedLayoutCache& c =
      paged_layout(layout, n_head, n_head_kv, sliding_window, k_pool.dim(0));
  const auto* dev = static_cast<const int32_t*>(
      upload_args(kPagedStep, c.image.data(), c.image.size() * sizeof(int32_t), paged_upload_));
  const cuda::PagedAttentionPlan& p = c.plan;
  cuda::PagedStep st;
  st.pos = dev + c.off_pos;
  st.block_table = dev + c.off_bt;
  st.max_blocks = layout.max_blocks;
  st.block_size = layout.block_size;
  st.decode_token = dev + c.off_dec_tok;
  st.decode_seq = dev + c.off_dec_seq;
  st.n_decode = static_cast<int64_t>(p.decode_token.size());
  st.n_splits = p.n_splits;
  st.tile_seq = dev + c.off_tile_seq;
  st.tile_first = dev + c.off_tile_first;
  st.tile_end = dev + c.off_tile_end;
  st.n_tiles = static_cast<int64_t>(p.tile_seq.size());

  void* ws = nullptr;
  if (st.n_decode > 0) {
    // Few decode rows (the captured single-token step among them): sized for the most splits
    // the plan ever picks, so the workspace does not grow as the context does.
    const int sized = st.n_decode <= cuda::kDecodeMaxTokens ? cuda::kMaxDecodeSplits : st.n_splits;
    ws = workspace(kAttention,
                   cuda::paged_attention_workspace_bytes(st.n_decode, n_head, head_dim, sized));
  }
  stats_.paged_decode_rows += static_cast<uint64_t>(st.n_decode);
  stats_.paged_prefill_tiles += static_cast<uint64_t>(st.n_tiles);
  if (st.n_splits > 1) ++stats_.paged_split_calls;
  cuda::paged_attention(q.as<float>(), n_head, k_pool.data, v_pool.data, k_pool.dtype, n_head_kv,
                        head_dim, st, sliding_window, scale, ws, out.as<float>(), stream_);
}

#undef SHARDLM_CUDA_REQUIRE

}  // namespace shardlm
