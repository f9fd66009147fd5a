// VulkanBackend: shape checks (the same as the CPU backend's), then a parameter block in the
// arena and a dispatch of the right shader variant on the stream.
#include "runtime/backend/vulkan/vulkan_backend.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "kernels/vulkan/shader_params.h"
#include "kernels/vulkan/shader_table.h"
#include "runtime/comm/communicator.h"
#include "runtime/comm/vulkan_communicator.h"
#include "runtime/core/status.h"

namespace shardlm {

namespace {

namespace vkk = vulkan_kernels;

class VulkanBuffer final : public DeviceBuffer {
 public:
  VulkanBuffer(VulkanBackend& backend, std::unique_ptr<vk::Allocation> alloc)
      : backend_(backend), alloc_(std::move(alloc)) {}
  ~VulkanBuffer() override { backend_.release(alloc_.get()); }
  void* data() const override { return alloc_->handle(); }
  size_t size() const override { return alloc_->size(); }

 private:
  VulkanBackend& backend_;
  std::unique_ptr<vk::Allocation> alloc_;
};

void check(bool ok, const char* op, const std::string& what) {
  if (!ok) fail(StatusCode::kInternal, std::string("vulkan ") + op + ": " + what);
}

void check_f32(const Tensor& t, const char* op, const char* name) {
  check(t.dtype == DType::kF32 && t.data != nullptr, op,
        std::string(name) + " must be a non-null f32 tensor, got " + t.describe());
}

// Element counts the shaders index with 32-bit integers.
uint32_t u32(int64_t v, const char* op, const char* what) {
  if (v < 0 || v > static_cast<int64_t>(std::numeric_limits<uint32_t>::max())) {
    fail(StatusCode::kUnsupported, std::string("vulkan ") + op + ": " + what + " = " +
                                       std::to_string(v) +
                                       " does not fit the shaders' 32-bit indices");
  }
  return static_cast<uint32_t>(v);
}

struct Groups {
  uint32_t x, y;
};
// `n` workgroups as x * y with x <= 65535 (the portable limit); shaders use flat_group().
Groups spread(uint64_t n) {
  if (n <= 65535) return {static_cast<uint32_t>(n), 1};
  return {65535, static_cast<uint32_t>((n + 65534) / 65535)};
}

uint64_t ceil_div(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}

template <class P>
P* params_at(const vk::Stream::ArenaSlice& s) {
  return reinterpret_cast<P*>(s.host);
}

constexpr size_t kParamsSlot = 128;  // every Params struct fits; arrays follow at this offset
static_assert(sizeof(vkk::EmbedParams) <= kParamsSlot && sizeof(vkk::RopeParams) <= kParamsSlot &&
              sizeof(vkk::AttentionParams) <= kParamsSlot &&
              sizeof(vkk::PagedAttentionParams) <= kParamsSlot &&
              sizeof(vkk::StoreKvParams) <= kParamsSlot);
static_assert(offsetof(vkk::PagedAttentionParams, seq) == 80);  // paged_attention.comp Params

}  // namespace

VulkanBackend::VulkanBackend(const VulkanOptions& options) : options_(options) {
  device_ = std::make_unique<vk::Device>(std::make_unique<vk::Instance>(options.loader), options);
  pipelines_ = std::make_unique<vk::Pipelines>(*device_, options.pipeline_cache_path);
  stream_ = std::make_unique<vk::Stream>(*device_, *pipelines_, options);
}

VulkanBackend::~VulkanBackend() {
  argmax_out_.reset();
  attn_partial_.reset();
  try {
    stream_->flush();
  } catch (...) {  // the device is going away; nothing left to report to
  }
}

void VulkanBackend::release(vk::Allocation* a) {
  try {
    if (!stream_->idle()) stream_->flush();  // queued ops may still read or write it
  } catch (...) {
  }
  stream_->forget_buffer(a->buffer());
  map_.remove(a);
  device_bytes_ -= a->size();
}

std::unique_ptr<DeviceBuffer> VulkanBackend::allocate(size_t bytes, MemoryKind kind) {
  auto alloc = std::make_unique<vk::Allocation>(
      *device_, bytes, vk::MemoryUse::kDevice, options_.allow_host_visible,
      kind == MemoryKind::kWeights ? "weights" : "scratch");
  vk::Allocation* a = alloc.get();
  map_.add(a);
  device_bytes_ += bytes;
  device_bytes_peak_ = std::max(device_bytes_peak_, device_bytes_);
  auto buf = std::make_unique<VulkanBuffer>(*this, std::move(alloc));
  if (kind == MemoryKind::kScratch && bytes > 0) {
    if (a->mapped() && stream_->idle()) {
      std::memset(a->mapped(), 0, bytes);
    } else {
      stream_->fill_zero(a->buffer(), 0, (bytes + 3) & ~size_t{3});
    }
  }
  return buf;
}

Tensor VulkanBackend::import_weight(const Tensor& host, std::unique_ptr<DeviceBuffer>& storage) {
  check(host.data != nullptr, "import_weight", "null host tensor " + host.describe());
  storage = allocate(host.nbytes(), MemoryKind::kWeights);
  Tensor dev = host;
  dev.data = storage->data();
  upload(resolve(dev, dev.nbytes(), "import_weight", "weight"), host.data, host.nbytes());
  return dev;
}

VulkanBackend::Resolved VulkanBackend::resolve(const Tensor& t, size_t bytes, const char* op,
                                               const char* name) const {
  const vk::AddressMap::Resolved r = map_.find(t.data);
  if (r.alloc == nullptr) {
    fail(StatusCode::kInternal, std::string("vulkan ") + op + ": " + name + " " + t.describe() +
                                    " is not in this vulkan backend's memory");
  }
  if (r.offset + bytes > r.alloc->size()) {
    fail(StatusCode::kInternal, std::string("vulkan ") + op + ": " + name + " " + t.describe() +
                                    " runs past its buffer (" + std::to_string(r.offset) + " + " +
                                    std::to_string(bytes) + " > " +
                                    std::to_string(r.alloc->size()) + " bytes)");
  }
  return {r.alloc, r.offset, r.alloc->address() + r.offset};
}

bool VulkanBackend::owns(const void* p) const {
  return map_.find(p).alloc != nullptr;
}

vk::Allocation& VulkanBackend::staging(vk::MemoryUse use) {
  auto& slot = use == vk::MemoryUse::kUpload ? upload_staging_ : readback_staging_;
  if (!slot) {
    slot = std::make_unique<vk::Allocation>(*device_, options_.staging_bytes, use, true,
                                            "staging buffer");
  }
  return *slot;
}

void VulkanBackend::upload(const Resolved& dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (dst.alloc->mapped() && stream_->idle()) {  // nothing queued can read the old bytes
    std::memcpy(dst.alloc->mapped() + dst.offset, src, bytes);
    return;
  }
  if (bytes <= stream_->arena_capacity() / 4) {  // small: through the arena, stays queued
    const vk::Stream::ArenaSlice s = stream_->arena_alloc(bytes);
    std::memcpy(s.host, src, bytes);
    stream_->copy(stream_->arena_buffer(), s.offset, dst.alloc->buffer(), dst.offset, bytes);
    return;
  }
  stream_->flush();
  if (dst.alloc->mapped()) {
    std::memcpy(dst.alloc->mapped() + dst.offset, src, bytes);
    return;
  }
  vk::Allocation& st = staging(vk::MemoryUse::kUpload);
  const auto* p = static_cast<const uint8_t*>(src);
  for (size_t done = 0; done < bytes;) {
    const size_t n = std::min(bytes - done, st.size());
    std::memcpy(st.mapped(), p + done, n);
    stream_->immediate_copy(st.buffer(), 0, dst.alloc->buffer(), dst.offset + done, n);
    done += n;
  }
}

void VulkanBackend::download(void* dst, const Resolved& src, size_t bytes) {
  stream_->flush();
  if (bytes == 0) return;
  if (src.alloc->mapped()) {
    std::memcpy(dst, src.alloc->mapped() + src.offset, bytes);
    return;
  }
  vk::Allocation& st = staging(vk::MemoryUse::kReadback);
  auto* p = static_cast<uint8_t*>(dst);
  for (size_t done = 0; done < bytes;) {
    const size_t n = std::min(bytes - done, st.size());
    stream_->immediate_copy(src.alloc->buffer(), src.offset + done, st.buffer(), 0, n);
    std::memcpy(p + done, st.mapped(), n);
    done += n;
  }
}

void VulkanBackend::copy_from_host(const Tensor& dst, const void* src, size_t bytes) {
  check(bytes <= dst.nbytes(), "copy_from_host", "too many bytes for " + dst.describe());
  upload(resolve(dst, bytes, "copy_from_host", "dst"), src, bytes);
}

void VulkanBackend::copy_to_host(void* dst, const Tensor& src, size_t bytes) {
  check(bytes <= src.nbytes(), "copy_to_host", "too many bytes for " + src.describe());
  download(dst, resolve(src, bytes, "copy_to_host", "src"), bytes);
}

void VulkanBackend::synchronize() {
  stream_->flush();
}

void* VulkanBackend::begin_host_access(void* p, size_t bytes) {
  Tensor t(p, DType::kF32, {static_cast<int64_t>(bytes / sizeof(float))});
  const Resolved r = resolve(t, bytes, "host access", "buffer");
  stream_->flush();
  if (r.alloc->mapped()) return r.alloc->mapped() + r.offset;
  host_stage_.resize(bytes);
  download(host_stage_.data(), r, bytes);
  return host_stage_.data();
}

void VulkanBackend::end_host_access(void* p, size_t bytes, bool modified) {
  Tensor t(p, DType::kF32, {static_cast<int64_t>(bytes / sizeof(float))});
  const Resolved r = resolve(t, bytes, "host access", "buffer");
  if (r.alloc->mapped() || !modified) return;  // coherent mapping: the next submit sees it
  check(host_stage_.size() >= bytes, "end_host_access", "no matching begin_host_access");
  upload(r, host_stage_.data(), bytes);
}

std::string VulkanBackend::variant(const char* shader, bool weights, DType wdtype, bool s16,
                                   bool sg) const {
  return vkk::variant_name(shader, weights, wdtype, s16 && device_->use_16bit_storage(),
                           sg && device_->use_subgroup_ops());
}

// ---- ops ----

void VulkanBackend::embed(std::span<const int32_t> ids, const Tensor& table, int64_t vocab_start,
                          const Tensor& out) {
  check_f32(out, "embed", "out");
  const int64_t n_tokens = static_cast<int64_t>(ids.size());
  check(table.ndim == 2 && out.numel() == n_tokens * table.dim(1), "embed",
        "table " + table.describe() + ", out " + out.describe());
  if (n_tokens == 0) return;
  const uint64_t table_addr = addr_of(table, "embed", "table");
  const uint64_t out_addr = addr_of(out, "embed", "out");
  const uint32_t n_el = u32(n_tokens * table.dim(1), "embed", "n_tokens * n_embd");
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(kParamsSlot + ids.size_bytes());
  std::memcpy(s.host + kParamsSlot, ids.data(), ids.size_bytes());
  auto* p = params_at<vkk::EmbedParams>(s);
  *p = {};
  p->ids = s.addr + kParamsSlot;
  p->table = table_addr;
  p->out = out_addr;
  p->n_tokens = static_cast<uint32_t>(n_tokens);
  p->n_embd = u32(table.dim(1), "embed", "n_embd");
  check(vocab_start >= 0 && vocab_start <= std::numeric_limits<int32_t>::max() &&
            table.dim(0) <= std::numeric_limits<int32_t>::max(),
        "embed", "vocab range does not fit int32");
  p->vocab_start = static_cast<int32_t>(vocab_start);
  p->n_vocab_local = static_cast<int32_t>(table.dim(0));
  const Groups g = spread(ceil_div(n_el, vkk::kElementwiseGroup));
  stream_->dispatch(variant("embed", true, table.dtype, true, false), g.x, g.y, 1, s);
}

void VulkanBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out) {
  check_f32(x, "rms_norm", "x");
  check_f32(w, "rms_norm", "w");
  check_f32(out, "rms_norm", "out");
  const int64_t n = w.numel();
  check(n > 0 && x.numel() % n == 0 && out.numel() == x.numel(), "rms_norm",
        "x " + x.describe() + ", w " + w.describe() + ", out " + out.describe());
  const int64_t n_rows = x.numel() / n;
  if (n_rows == 0) return;
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(sizeof(vkk::RmsNormParams));
  auto* p = params_at<vkk::RmsNormParams>(s);
  *p = {};
  p->x = addr_of(x, "rms_norm", "x");
  p->w = addr_of(w, "rms_norm", "w");
  p->out = addr_of(out, "rms_norm", "out");
  p->n_rows = u32(n_rows, "rms_norm", "n_rows");
  p->n = u32(n, "rms_norm", "n");
  u32(x.numel(), "rms_norm", "n_rows * n");
  p->eps = eps;
  const Groups g = spread(static_cast<uint64_t>(n_rows));
  stream_->dispatch(variant("rms_norm", false, DType::kF32, false, true), g.x, g.y, 1, s);
}

void VulkanBackend::matmul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) {
  check_f32(x, "matmul", "x");
  check_f32(y, "matmul", "y");
  check(w.ndim == 2 && w.data != nullptr, "matmul", "w must be 2-D, got " + w.describe());
  const int64_t n_out = w.dim(0), n_in = w.dim(1);
  check(n_in > 0 && x.numel() % n_in == 0, "matmul", "x " + x.describe() + " vs w " + w.describe());
  const int64_t n_tokens = x.numel() / n_in;
  check(y.numel() == n_tokens * n_out, "matmul",
        "y " + y.describe() + " for x " + x.describe() + " @ w " + w.describe());
  if (n_tokens == 0 || n_out == 0) return;
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(sizeof(vkk::MatmulParams));
  auto* p = params_at<vkk::MatmulParams>(s);
  *p = {};
  p->x = addr_of(x, "matmul", "x");
  p->w = addr_of(w, "matmul", "w");
  p->y = addr_of(y, "matmul", "y");
  if (bias.data != nullptr) {
    check_f32(bias, "matmul", "bias");
    check(bias.numel() == n_out, "matmul", "bias " + bias.describe() + " vs " + w.describe());
    p->bias = addr_of(bias, "matmul", "bias");
    p->has_bias = 1;
  }
  p->n_tokens = u32(n_tokens, "matmul", "n_tokens");
  p->n_in = u32(n_in, "matmul", "n_in");
  p->n_out = u32(n_out, "matmul", "n_out");
  u32(w.numel(), "matmul", "n_out * n_in");
  u32(x.numel(), "matmul", "n_tokens * n_in");
  u32(y.numel(), "matmul", "n_tokens * n_out");
  if (is_quantized(w.dtype)) {  // every token count: R rows per group, NT tokens per z group
    check(n_in % quant_scale_inputs(w.dtype) == 0, "matmul",
          "quantized rows of whole scale groups, got " + w.describe());
    p->vec4_ok = 0;
    const uint64_t gz = ceil_div(static_cast<uint64_t>(n_tokens), vkk::kGemvQuantTokens);
    check(gz <= 65535, "matmul", "too many tokens for one quantized matmul: " + x.describe());
    const Groups g = spread(ceil_div(static_cast<uint64_t>(n_out), vkk::kGemvQuantRows));
    stream_->dispatch(variant("gemv_quant", true, w.dtype, false, false), g.x, g.y,
                      static_cast<uint32_t>(gz), s);
    return;
  }
  const uint64_t w_align = w.dtype == DType::kF32 ? 16 : 8;
  p->vec4_ok = (n_in % 4 == 0 && p->x % 16 == 0 && p->w % w_align == 0) ? 1 : 0;
  if (n_tokens <= static_cast<int64_t>(vkk::kGemvTokens)) {
    // Subgroup variant: one RS-row step per subgroup of the workgroup.
    const uint32_t sg = std::max<uint32_t>(1, device_->info().subgroup_size);
    p->rows_per_group = (n_tokens == 1 ? vkk::kGemvRowsPerSubgroup : vkk::kGemv8RowsPerSubgroup) *
                        std::max<uint32_t>(1, vkk::kGemvGroup / sg);
    const uint64_t rows_per_group =
        device_->use_subgroup_ops() ? p->rows_per_group : vkk::kGemvRows;
    const Groups g = spread(ceil_div(static_cast<uint64_t>(n_out), rows_per_group));
    stream_->dispatch(variant(n_tokens == 1 ? "gemv" : "gemv8", true, w.dtype, true, true), g.x,
                      g.y, 1, s);
  } else {
    const uint64_t gx = ceil_div(static_cast<uint64_t>(n_out), vkk::kGemmTileOut);
    const uint64_t gy = ceil_div(static_cast<uint64_t>(n_tokens), vkk::kGemmTileTokens);
    check(gx <= 65535 && gy <= 65535, "matmul", "too many tiles for " + w.describe());
    stream_->dispatch(variant("gemm_tiled", true, w.dtype, true, false), static_cast<uint32_t>(gx),
                      static_cast<uint32_t>(gy), 1, s);
  }
}

void VulkanBackend::rope(const Tensor& x, std::span<const int32_t> pos, const Tensor& inv_freq) {
  check_f32(x, "rope", "x");
  check_f32(inv_freq, "rope", "inv_freq");
  check(x.ndim == 3 && x.dim(0) == static_cast<int64_t>(pos.size()) &&
            inv_freq.numel() * 2 == x.dim(2),
        "rope", "x " + x.describe() + ", inv_freq " + inv_freq.describe());
  const int64_t n_tokens = x.dim(0), n_head = x.dim(1), half = x.dim(2) / 2;
  if (n_tokens == 0 || half == 0) return;
  const uint32_t n_el = u32(n_tokens * n_head * half, "rope", "n_tokens * n_head * half");
  u32(x.numel(), "rope", "numel");
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(kParamsSlot + pos.size_bytes());
  std::memcpy(s.host + kParamsSlot, pos.data(), pos.size_bytes());
  auto* p = params_at<vkk::RopeParams>(s);
  *p = {};
  p->x = addr_of(x, "rope", "x");
  p->pos = s.addr + kParamsSlot;
  p->inv_freq = addr_of(inv_freq, "rope", "inv_freq");
  p->n_tokens = static_cast<uint32_t>(n_tokens);
  p->n_head = static_cast<uint32_t>(n_head);
  p->half_dim = static_cast<uint32_t>(half);
  const Groups g = spread(ceil_div(n_el, vkk::kElementwiseGroup));
  stream_->dispatch("rope", g.x, g.y, 1, s);
}

void VulkanBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                              std::span<const int32_t> pos, int64_t sliding_window, float scale,
                              const Tensor& out) {
  check_f32(q, "attention", "q");
  check_f32(k, "attention", "k");
  check_f32(v, "attention", "v");
  check_f32(out, "attention", "out");
  const int64_t n_tokens = static_cast<int64_t>(pos.size());
  check(q.ndim == 3 && k.ndim == 3 && q.dim(0) == n_tokens && k.dim(2) == q.dim(2) &&
            v.numel() == k.numel() && q.dim(1) % k.dim(1) == 0 && out.numel() == q.numel(),
        "attention", "q " + q.describe() + ", k " + k.describe() + ", out " + out.describe());
  for (int32_t ps : pos) {
    check(ps >= 0 && ps < k.dim(0), "attention",
          "position " + std::to_string(ps) + " outside cache of " + std::to_string(k.dim(0)));
  }
  if (n_tokens == 0) return;
  const int64_t head_dim = q.dim(2);
  if (head_dim > static_cast<int64_t>(vkk::kAttentionMaxHeadDim)) {
    fail(StatusCode::kUnsupported, "vulkan attention: head_dim " + std::to_string(head_dim) +
                                       " > " + std::to_string(vkk::kAttentionMaxHeadDim));
  }
  check(q.dim(1) <= 65535 && n_tokens <= 65535, "attention", "too many heads or tokens");
  u32(k.numel(), "attention", "cache elements");
  u32(q.numel(), "attention", "q elements");
  const int64_t splits = attention_split_count(n_tokens * q.dim(1));
  uint64_t partial_addr = 0;
  if (splits > 1) {  // before arena_alloc: replacing the buffer may flush the stream
    partial_addr = attention_partials(
        static_cast<size_t>(n_tokens * q.dim(1) * splits * (head_dim + 2)) * sizeof(float),
        "attention");
  }
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(kParamsSlot + pos.size_bytes());
  std::memcpy(s.host + kParamsSlot, pos.data(), pos.size_bytes());
  auto* p = params_at<vkk::AttentionParams>(s);
  *p = {};
  p->q = addr_of(q, "attention", "q");
  p->k = addr_of(k, "attention", "k");
  p->v = addr_of(v, "attention", "v");
  p->pos = s.addr + kParamsSlot;
  p->out = addr_of(out, "attention", "out");
  p->partial = partial_addr;
  p->n_tokens = static_cast<uint32_t>(n_tokens);
  p->n_head = static_cast<uint32_t>(q.dim(1));
  p->n_head_kv = static_cast<uint32_t>(k.dim(1));
  p->head_dim = static_cast<uint32_t>(head_dim);
  p->window = static_cast<int32_t>(
      std::clamp<int64_t>(sliding_window, 0, std::numeric_limits<int32_t>::max()));
  p->scale = scale;
  p->n_split = static_cast<uint32_t>(splits);
  stream_->dispatch(variant("attention", false, DType::kF32, false, true),
                    static_cast<uint32_t>(q.dim(1)), static_cast<uint32_t>(n_tokens),
                    static_cast<uint32_t>(splits), s);
  if (splits > 1) {  // the same parameter block serves the merge
    stream_->dispatch("attention_combine", static_cast<uint32_t>(q.dim(1)),
                      static_cast<uint32_t>(n_tokens), 1, s);
  }
}

int64_t VulkanBackend::attention_split_count(int64_t n_rows) const {
  // Split-K (more workgroups than heads) for decode on GPUs; the count depends only on shapes
  // that are fixed for a decode step, never on the context length.
  int64_t splits = options_.attention_splits;
  if (splits < 0) splits = device_->info().type != "cpu" && n_rows < 1024 ? 16 : 1;
  return std::clamp<int64_t>(splits, 1, 64);
}

uint64_t VulkanBackend::attention_partials(size_t bytes, const char* op) {
  if (!attn_partial_ || attn_partial_->size() < bytes) {
    attn_partial_.reset();
    attn_partial_ = allocate(bytes, MemoryKind::kScratch);
  }
  return addr_of(
      Tensor(attn_partial_->data(), DType::kF32, {static_cast<int64_t>(bytes / sizeof(float))}), op,
      "partials");
}

namespace {

bool is_shader_kv_dtype(DType d) {
  return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16;
}

// The pools of one layer: non-null, 3-D, same dtype (f32/f16/bf16) and shape.
void check_pools(const Tensor& k_pool, const Tensor& v_pool, const char* op) {
  check(k_pool.data != nullptr && v_pool.data != nullptr && k_pool.ndim == 3 && v_pool.ndim == 3 &&
            is_shader_kv_dtype(k_pool.dtype) && v_pool.dtype == k_pool.dtype &&
            v_pool.dim(0) == k_pool.dim(0) && v_pool.dim(1) == k_pool.dim(1) &&
            v_pool.dim(2) == k_pool.dim(2),
        op,
        "k_pool and v_pool must be non-null [n_slots, n_head_kv, head_dim] pools of one dtype "
        "(f32, f16 or bf16), got k_pool " +
            k_pool.describe() + ", v_pool " + v_pool.describe());
}

// Smallest power of two >= n (and >= 256): array sizes that change rarely as contexts grow.
size_t bucket(size_t n) {
  size_t b = 256;
  while (b < n) b <<= 1;
  return b;
}

}  // namespace

void VulkanBackend::store_kv(const Tensor& k, const Tensor& v, std::span<const int64_t> slots,
                             const Tensor& k_pool, const Tensor& v_pool) {
  check_f32(k, "store_kv", "k");
  check_f32(v, "store_kv", "v");
  check_pools(k_pool, v_pool, "store_kv");
  const int64_t n_tokens = static_cast<int64_t>(slots.size());
  check(k.ndim == 3 && k.dim(0) == n_tokens && v.numel() == k.numel() &&
            k_pool.dim(1) == k.dim(1) && k_pool.dim(2) == k.dim(2),
        "store_kv",
        "k " + k.describe() + ", v " + v.describe() + " for " + std::to_string(n_tokens) +
            " slots, k_pool " + k_pool.describe());
  const int64_t n_slots = k_pool.dim(0);
  for (int64_t sl : slots) {
    check(sl < n_slots, "store_kv",
          "slot " + std::to_string(sl) + " outside the pool of " + std::to_string(n_slots));
  }
  const int64_t row = k.dim(1) * k.dim(2);
  if (n_tokens == 0 || row == 0) return;
  u32(k_pool.numel(), "store_kv", "pool elements");
  u32(k.numel(), "store_kv", "k elements");
  const DType dt = k_pool.dtype;
  const uint64_t k_pool_addr = addr_of(k_pool, "store_kv", "k_pool");
  const uint64_t v_pool_addr = addr_of(v_pool, "store_kv", "v_pool");
  // 16-bit pools without 16-bit storage are written a 32-bit word (two elements) at a time.
  const bool words = dt != DType::kF32 && !device_->use_16bit_storage();
  if (words && (row % 2 != 0 || k_pool_addr % 4 != 0 || v_pool_addr % 4 != 0)) {
    fail(StatusCode::kUnsupported,
         std::string("vulkan store_kv: a ") + dtype_name(dt) + " pool with rows of " +
             std::to_string(row) +
             " elements (n_head_kv * head_dim) needs an even row and 4-byte aligned pools on a "
             "device without 16-bit storage; got k_pool " +
             k_pool.describe());
  }
  const vk::Stream::ArenaSlice s =
      stream_->arena_alloc(kParamsSlot + static_cast<size_t>(n_tokens) * sizeof(int32_t));
  auto* dst_slots = reinterpret_cast<int32_t*>(s.host + kParamsSlot);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t sl = slots[static_cast<size_t>(t)];
    dst_slots[t] = sl < 0 ? -1 : static_cast<int32_t>(sl);  // < n_slots, which fits (u32 above)
  }
  auto* p = params_at<vkk::StoreKvParams>(s);
  *p = {};
  p->k = addr_of(k, "store_kv", "k");
  p->v = addr_of(v, "store_kv", "v");
  p->slots = s.addr + kParamsSlot;
  p->k_pool = k_pool_addr;
  p->v_pool = v_pool_addr;
  p->n_tokens = static_cast<uint32_t>(n_tokens);
  p->row = static_cast<uint32_t>(row);
  const uint64_t n_items = static_cast<uint64_t>(k.numel()) / (words ? 2 : 1);
  const Groups g = spread(ceil_div(n_items, vkk::kElementwiseGroup));
  stream_->dispatch(variant("store_kv", true, dt, true, false), g.x, g.y, 1, s);
}

void VulkanBackend::paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                                    const StepLayout& layout, int64_t sliding_window, float scale,
                                    const Tensor& out) {
  const char* op = "paged_attention";
  check_f32(q, op, "q");
  check_f32(out, op, "out");
  check_pools(k_pool, v_pool, op);
  const int64_t n_tokens = static_cast<int64_t>(layout.positions.size());
  const int64_t n_seqs = static_cast<int64_t>(layout.seq_starts.size()) - 1;
  check(q.ndim == 3 && q.dim(0) == n_tokens && q.dim(2) == k_pool.dim(2) && k_pool.dim(1) > 0 &&
            q.dim(1) % k_pool.dim(1) == 0 && out.numel() == q.numel(),
        op,
        "q " + q.describe() + ", k_pool " + k_pool.describe() + ", out " + out.describe() +
            " for " + std::to_string(n_tokens) + " positions");
  check(layout.block_size > 0 && n_seqs >= 1 && layout.max_blocks >= 0 &&
            static_cast<int64_t>(layout.block_table.size()) == n_seqs * layout.max_blocks,
        op,
        "layout of " + std::to_string(n_seqs) + " sequences, block_size " +
            std::to_string(layout.block_size) + ", block table of " +
            std::to_string(layout.block_table.size()) + " entries for max_blocks " +
            std::to_string(layout.max_blocks));
  const std::span<const int32_t> starts = layout.seq_starts, pos = layout.positions;
  check(starts.front() == 0 && starts.back() == n_tokens, op,
        "seq_starts must run from 0 to n_tokens = " + std::to_string(n_tokens) + ", got " +
            std::to_string(starts.front()) + " .. " + std::to_string(starts.back()));
  if (n_tokens == 0) return;
  const int64_t head_dim = q.dim(2), n_head = q.dim(1), bs = layout.block_size;
  const int64_t n_slots = k_pool.dim(0);
  if (head_dim > static_cast<int64_t>(vkk::kAttentionMaxHeadDim)) {
    fail(StatusCode::kUnsupported, "vulkan paged_attention: head_dim " + std::to_string(head_dim) +
                                       " > " + std::to_string(vkk::kAttentionMaxHeadDim));
  }
  check(n_head <= 65535 && n_tokens <= 65535, op, "too many heads or tokens");
  u32(k_pool.numel(), op, "pool elements");
  u32(q.numel(), op, "q elements");
  u32(n_seqs * layout.max_blocks, op, "block table entries");
  check(bs <= std::numeric_limits<int32_t>::max(), op, "block_size too large");

  // Host checks of what the shader will read: every position of every query's range mapped to
  // a block inside the pool. The host image: pos [T], seq [T], block table [S * max_blocks].
  const size_t n_arr = static_cast<size_t>(2 * n_tokens + n_seqs * layout.max_blocks);
  const size_t arr_bytes = bucket(n_arr * sizeof(int32_t));
  paged_host_.assign(arr_bytes / sizeof(int32_t), 0);
  int32_t* h_pos = paged_host_.data();
  int32_t* h_seq = h_pos + n_tokens;
  int32_t* h_bt = h_seq + n_tokens;
  std::copy(pos.begin(), pos.end(), h_pos);
  std::copy(layout.block_table.begin(), layout.block_table.end(), h_bt);
  for (int64_t sq = 0; sq < n_seqs; ++sq) {
    const int64_t t0 = starts[static_cast<size_t>(sq)], t1 = starts[static_cast<size_t>(sq) + 1];
    check(t0 <= t1 && t1 <= n_tokens, op,
          "seq_starts not ascending at sequence " + std::to_string(sq) + " (" + std::to_string(t0) +
              ", " + std::to_string(t1) + ")");
    if (t0 == t1) continue;
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = -1;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ps = pos[static_cast<size_t>(t)];
      check(ps >= 0 && ps / bs < layout.max_blocks, op,
            "position " + std::to_string(ps) + " of token " + std::to_string(t) +
                " outside its block table of " + std::to_string(layout.max_blocks) + " blocks of " +
                std::to_string(bs));
      h_seq[t] = static_cast<int32_t>(sq);
      lo = std::min(lo, sliding_window > 0 ? std::max<int64_t>(0, ps - sliding_window + 1) : 0);
      hi = std::max(hi, ps);
    }
    const int32_t* row = layout.block_table.data() + sq * layout.max_blocks;
    for (int64_t i = lo / bs; i <= hi / bs; ++i) {
      const int64_t b = row[i];
      const int64_t last = i == hi / bs ? hi % bs : bs - 1;  // highest offset read in block i
      check(b >= 0 && b * bs + last < n_slots, op,
            "sequence " + std::to_string(sq) + " block " + std::to_string(i) + " is " +
                std::to_string(b) + ", outside the pool of " + std::to_string(n_slots) +
                " slots (block_size " + std::to_string(bs) + ")");
    }
  }

  const int64_t splits = attention_split_count(n_tokens * n_head);
  uint64_t partial_addr = 0;
  if (splits > 1) {  // before arena_alloc: replacing the buffer may flush the stream
    partial_addr = attention_partials(
        static_cast<size_t>(n_tokens * n_head * splits * (head_dim + 2)) * sizeof(float), op);
  }
  // The arrays go in the arena next to the parameters, or (too big for it) in a scratch
  // buffer uploaded first (that upload flushes, so earlier readers of the buffer are done).
  const bool in_arena = arr_bytes <= stream_->arena_capacity() / 4;
  uint64_t arr_addr = 0;
  if (!in_arena) {
    if (!paged_layout_ || paged_layout_->size() < arr_bytes) {
      paged_layout_.reset();
      paged_layout_ = allocate(arr_bytes, MemoryKind::kScratch);
    }
    const Tensor arr(paged_layout_->data(), DType::kF32,
                     {static_cast<int64_t>(arr_bytes / sizeof(float))});
    const Resolved r = resolve(arr, arr_bytes, op, "layout arrays");
    upload(r, paged_host_.data(), arr_bytes);
    arr_addr = r.addr;
  }
  const uint64_t k_addr = addr_of(k_pool, op, "k_pool");
  const uint64_t v_addr = addr_of(v_pool, op, "v_pool");
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(kParamsSlot + (in_arena ? arr_bytes : 0));
  if (in_arena) {
    std::memcpy(s.host + kParamsSlot, paged_host_.data(), arr_bytes);
    arr_addr = s.addr + kParamsSlot;
  }
  auto* p = params_at<vkk::PagedAttentionParams>(s);
  *p = {};
  p->base.q = addr_of(q, op, "q");
  p->base.k = k_addr;
  p->base.v = v_addr;
  p->base.pos = arr_addr;
  p->base.out = addr_of(out, op, "out");
  p->base.partial = partial_addr;
  p->base.n_tokens = static_cast<uint32_t>(n_tokens);
  p->base.n_head = static_cast<uint32_t>(n_head);
  p->base.n_head_kv = static_cast<uint32_t>(k_pool.dim(1));
  p->base.head_dim = static_cast<uint32_t>(head_dim);
  p->base.window = static_cast<int32_t>(
      std::clamp<int64_t>(sliding_window, 0, std::numeric_limits<int32_t>::max()));
  p->base.scale = scale;
  p->base.n_split = static_cast<uint32_t>(splits);
  p->seq = arr_addr + static_cast<uint64_t>(n_tokens) * sizeof(int32_t);
  p->block_table = arr_addr + static_cast<uint64_t>(2 * n_tokens) * sizeof(int32_t);
  p->block_size = static_cast<uint32_t>(bs);
  p->max_blocks = static_cast<uint32_t>(layout.max_blocks);
  const uint64_t k_align = k_pool.dtype == DType::kF32 ? 16 : 8;
  p->vec4_k = head_dim % 4 == 0 && k_addr % k_align == 0 ? 1 : 0;
  const DType dt = k_pool.dtype;
  if (dt != DType::kF32 && !device_->use_16bit_storage()) {  // 32-bit-word loads
    check(k_addr % 4 == 0 && v_addr % 4 == 0, op,
          "16-bit pools must be 4-byte aligned without 16-bit storage, got k_pool " +
              k_pool.describe());
  }
  stream_->dispatch(variant("paged_attention", true, dt, true, true), static_cast<uint32_t>(n_head),
                    static_cast<uint32_t>(n_tokens), static_cast<uint32_t>(splits), s);
  if (splits > 1) {  // the parameter block starts with attention_combine's
    stream_->dispatch("attention_combine", static_cast<uint32_t>(n_head),
                      static_cast<uint32_t>(n_tokens), 1, s);
  }
}

void VulkanBackend::swiglu(const Tensor& gate_up, const Tensor& out) {
  check_f32(gate_up, "swiglu", "gate_up");
  check_f32(out, "swiglu", "out");
  check(gate_up.ndim == 2 && gate_up.dim(1) % 2 == 0 && out.numel() == gate_up.numel() / 2,
        "swiglu", "gate_up " + gate_up.describe() + ", out " + out.describe());
  if (out.numel() == 0) return;
  u32(gate_up.numel(), "swiglu", "gate_up elements");
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(sizeof(vkk::SwigluParams));
  auto* p = params_at<vkk::SwigluParams>(s);
  *p = {};
  p->gate_up = addr_of(gate_up, "swiglu", "gate_up");
  p->out = addr_of(out, "swiglu", "out");
  p->n_tokens = static_cast<uint32_t>(gate_up.dim(0));
  p->n_ff = static_cast<uint32_t>(gate_up.dim(1) / 2);
  const Groups g = spread(ceil_div(static_cast<uint64_t>(out.numel()), vkk::kElementwiseGroup));
  stream_->dispatch("swiglu", g.x, g.y, 1, s);
}

void VulkanBackend::add(const Tensor& y, const Tensor& x) {
  check_f32(y, "add", "y");
  check_f32(x, "add", "x");
  check(y.numel() == x.numel(), "add", "y " + y.describe() + ", x " + x.describe());
  if (y.numel() == 0) return;
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(sizeof(vkk::AddParams));
  auto* p = params_at<vkk::AddParams>(s);
  *p = {};
  p->y = addr_of(y, "add", "y");
  p->x = addr_of(x, "add", "x");
  p->n = u32(y.numel(), "add", "n");
  const Groups g = spread(ceil_div(p->n, vkk::kElementwiseGroup));
  stream_->dispatch("add", g.x, g.y, 1, s);
}

void VulkanBackend::copy_columns(const Tensor& src, int64_t col_begin, const Tensor& dst) {
  check_f32(src, "copy_columns", "src");
  check_f32(dst, "copy_columns", "dst");
  const int64_t n_rows = src.rows();
  const int64_t n_src_cols = src.row_size();
  check(n_rows > 0 && dst.numel() % n_rows == 0, "copy_columns",
        "src " + src.describe() + ", dst " + dst.describe());
  const int64_t n_cols = dst.numel() / n_rows;
  check(col_begin >= 0 && col_begin + n_cols <= n_src_cols, "copy_columns",
        "columns [" + std::to_string(col_begin) + ", +" + std::to_string(n_cols) + ") of " +
            src.describe());
  if (dst.numel() == 0) return;
  u32(src.numel(), "copy_columns", "src elements");
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(sizeof(vkk::CopyColumnsParams));
  auto* p = params_at<vkk::CopyColumnsParams>(s);
  *p = {};
  p->src = addr_of(src, "copy_columns", "src");
  p->dst = addr_of(dst, "copy_columns", "dst");
  p->n_rows = static_cast<uint32_t>(n_rows);
  p->n_src_cols = static_cast<uint32_t>(n_src_cols);
  p->col_begin = static_cast<uint32_t>(col_begin);
  p->n_cols = static_cast<uint32_t>(n_cols);
  const Groups g = spread(ceil_div(static_cast<uint64_t>(dst.numel()), vkk::kElementwiseGroup));
  stream_->dispatch("copy_columns", g.x, g.y, 1, s);
}

Backend::MaxElement VulkanBackend::max_element(const Tensor& x) {
  check_f32(x, "max_element", "x");
  check(x.numel() > 0, "max_element", "empty tensor " + x.describe());
  if (!argmax_out_) argmax_out_ = allocate(2 * sizeof(float), MemoryKind::kScratch);
  const Tensor out(argmax_out_->data(), DType::kF32, {2});  // {int32 index, f32 value}
  const vk::Stream::ArenaSlice s = stream_->arena_alloc(sizeof(vkk::ArgmaxParams));
  auto* p = params_at<vkk::ArgmaxParams>(s);
  *p = {};
  p->x = addr_of(x, "max_element", "x");
  p->out = addr_of(out, "max_element", "out");
  p->n = u32(x.numel(), "max_element", "n");
  stream_->dispatch("argmax", 1, 1, 1, s);
  uint32_t words[2] = {0, 0};
  copy_to_host(words, out, sizeof words);
  MaxElement r;
  r.index = static_cast<int32_t>(words[0]);
  std::memcpy(&r.value, &words[1], sizeof r.value);
  return r;
}

std::unique_ptr<Communicator> VulkanBackend::make_communicator(Communicator& host) {
  return make_vulkan_communicator(*this, host);
}

std::unique_ptr<VulkanBackend> make_vulkan_backend(const VulkanOptions& options) {
  return std::make_unique<VulkanBackend>(options);
}

std::vector<int> vulkan_rank_devices(const std::vector<int>& requested, const char* env,
                                     const std::vector<VulkanDeviceInfo>& all) {
  std::vector<int> list = requested;
  if (list.empty() && env != nullptr && *env != '\0') {
    std::string item;
    for (const char* c = env;; ++c) {
      if (*c == ',' || *c == '\0') {
        int index = -1;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), index);
        if (item.empty() || ec != std::errc() || end != item.data() + item.size() || index < 0) {
          fail(StatusCode::kInvalidArg, std::string("SHARDLM_VULKAN_DEVICES=\"") + env +
                                            "\": expected device indices like 0,1");
        }
        list.push_back(index);
        item.clear();
        if (*c == '\0') break;
      } else {
        item += *c;
      }
    }
  }
  if (list.empty()) {  // every usable GPU; CPU devices (lavapipe) only when there is no GPU
    for (const VulkanDeviceInfo& d : all) {
      if (d.usable && d.type != "cpu") list.push_back(d.index);
    }
    for (const VulkanDeviceInfo& d : all) {
      if (list.empty() && d.usable) list.push_back(d.index);
    }
    if (list.empty()) list.push_back(0);  // VulkanBackend reports why device 0 is unusable
  }
  return list;
}

std::unique_ptr<Backend> make_vulkan_backend(const BackendOptions& options) {
  check_backend_settings(options, "vulkan", {"pipeline_cache"});
  VulkanOptions vo;
  if (auto cache = backend_setting(options, "pipeline_cache", "SHARDLM_VULKAN_PIPELINE_CACHE"))
    vo.pipeline_cache_path = *cache;
  std::vector<VulkanDeviceInfo> all;
  if (options.devices.empty()) all = list_vulkan_devices(vo.loader);
  const std::vector<int> devices =
      vulkan_rank_devices(options.devices, std::getenv("SHARDLM_VULKAN_DEVICES"), all);
  auto device_of = [&](int rank) { return devices[static_cast<size_t>(rank) % devices.size()]; };
  vo.device = device_of(options.rank);
  auto backend = std::make_unique<VulkanBackend>(vo);
  // CPU devices (lavapipe) allocate host memory and report a nominal heap size (2 GiB on
  // lavapipe): there the plan is the host's business, not the device's.
  if (options.planned_bytes > 0 && backend->device_info().type != "cpu") {
    // Ranks that share this device share its memory.
    int sharing = 0;
    for (int r = 0; r < options.n_ranks; ++r) sharing += device_of(r) == vo.device ? 1 : 0;
    const double fraction = options.mem_fraction > 0 ? options.mem_fraction : 0.9;
    const double budget = static_cast<double>(backend->device_info().device_local_bytes) *
                          fraction / std::max(1, sharing);
    if (static_cast<double>(options.planned_bytes) > budget) {
      char msg[320];
      std::snprintf(
          msg, sizeof msg,
          "vulkan device %d (%s): rank %d plans %.2f GiB but its share is %.2f GiB "
          "(%.2f of %.2f GiB, %d rank(s) on the device); lower --n-ctx or raise "
          "--mem-fraction",
          vo.device, backend->device_info().name.c_str(), options.rank,
          static_cast<double>(options.planned_bytes) / (1u << 30), budget / (1u << 30), fraction,
          static_cast<double>(backend->device_info().device_local_bytes) / (1u << 30), sharing);
      fail(StatusCode::kOom, msg);
    }
  }
  return backend;
}

}  // namespace shardlm
