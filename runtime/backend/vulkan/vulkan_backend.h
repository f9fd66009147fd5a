// The Vulkan backend: the same packs on any Vulkan 1.2 GPU (and on Mesa's lavapipe CPU driver,
// which is how CI tests it). Weights are uploaded once to device-local memory; activations and
// the KV cache live there too. Ops are GLSL compute shaders (kernels/vulkan) reached through
// buffer device addresses; they are queued and submitted in batches at sync points, with
// command buffers recorded once per op-list shape and replayed (vk_stream.h says how).
// Tensor::data of a Vulkan tensor is an opaque handle, not host memory (vk_memory.h).
//
// Besides the Backend interface, VulkanBackend offers what the host-visible-memory
// communicator, benchmarks and tests need: host access to device tensors, an on-device argmax,
// the device description, stream statistics and GPU timestamps.
// Buffers from allocate()/import_weight() must be destroyed before the backend.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend/backend.h"
#include "runtime/backend/vulkan/vk_device.h"
#include "runtime/backend/vulkan/vk_memory.h"
#include "runtime/backend/vulkan/vk_pipelines.h"
#include "runtime/backend/vulkan/vk_stream.h"
#include "runtime/backend/vulkan/vulkan_options.h"
#include "runtime/comm/vulkan_communicator.h"

namespace shardlm {

class VulkanBackend final : public Backend, public DeviceHostAccess {
 public:
  // Throws Error(kBackend) "vulkan backend not available: ..." without loader or device,
  // Error(kInvalidArg) for a device index that does not exist.
  explicit VulkanBackend(const VulkanOptions& options);
  ~VulkanBackend() override;

  const char* name() const override { return "vulkan"; }
  std::unique_ptr<DeviceBuffer> allocate(size_t bytes, MemoryKind kind) override;
  Tensor import_weight(const Tensor& host, std::unique_ptr<DeviceBuffer>& storage) override;
  bool uses_host_weights_in_place(DType) const override { return false; }
  void copy_from_host(const Tensor& dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override;
  void synchronize() override;
  // A host-visible-memory communicator wrapping the group's host communicator (vulkan_comm).
  MemorySpace memory_space() const override { return MemorySpace::kDevice; }
  std::unique_ptr<Communicator> make_communicator(Communicator& host) override;
  // Computed on the device (argmax.comp); only {index, value} is read back.   x [n] f32
  MaxElement max_element(const Tensor& x) override;

  void embed(std::span<const int32_t> ids, const Tensor& table, int64_t vocab_start,
             const Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out) override;
  void matmul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) override;
  void rope(const Tensor& x, std::span<const int32_t> pos, const Tensor& inv_freq) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, std::span<const int32_t> pos,
                 int64_t sliding_window, float scale, const Tensor& out) override;
  // Paged KV (the step engine): store_kv.comp and paged_attention.comp (+ attention_combine
  // for split-K). The layout's arrays travel in the parameter arena (a scratch buffer when too
  // big for it), padded to power-of-two sizes so decode steps keep replaying recorded command
  // buffers while block tables grow. Positions, sequence bounds and the block ids a query reads
  // are checked on the host first: a bad layout is an Error, never a read outside the pools.
  void store_kv(const Tensor& k, const Tensor& v, std::span<const int64_t> slots,
                const Tensor& k_pool, const Tensor& v_pool) override;
  void paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                       const StepLayout& layout, int64_t sliding_window, float scale,
                       const Tensor& out) override;
  void swiglu(const Tensor& gate_up, const Tensor& out) override;
  void add(const Tensor& y, const Tensor& x) override;
  void copy_columns(const Tensor& src, int64_t col_begin, const Tensor& dst) override;

  // ---- Vulkan extras ----

  // True when `p` points into memory allocated by this backend.
  bool owns(const void* p) const;
  // Every weight dtype: f32/f16/bf16, and int8/int4 through gemv_quant.comp and embed.comp.
  bool supports_weight_dtype(DType) const override { return true; }
  // f32, f16, bf16 pools (its shaders read no f8e4m3 KV yet).
  bool supports_kv_dtype(DType dtype) const override {
    return is_kv_dtype(dtype) && dtype != DType::kF8E4M3;
  }
  // Host access to `bytes` of device memory at `p` (for collectives): flushes queued work and
  // returns a host pointer: the mapping itself on host-visible memory, else a staging copy.
  // end_host_access() writes a staged copy back (when `modified`) before any later op.
  void* begin_host_access(void* p, size_t bytes) override;
  void end_host_access(void* p, size_t bytes, bool modified) override;

  const VulkanDeviceInfo& device_info() const { return device_->info(); }
  const VulkanOptions& options() const { return options_; }
  bool uses_subgroup_ops() const { return device_->use_subgroup_ops(); }
  bool uses_16bit_storage() const { return device_->use_16bit_storage(); }
  const vk::StreamStats& stream_stats() const { return stream_->stats(); }
  void reset_stream_stats() { stream_->reset_stats(); }
  // GPU time per shader variant (ns) while profiling is on (needs device timestamps).
  void set_profiling(bool on) { stream_->set_profiling(on); }
  const std::map<std::string, uint64_t>& op_gpu_ns() const { return stream_->op_gpu_ns(); }
  size_t pipelines_created() const { return pipelines_->created(); }
  uint64_t device_bytes() const { return device_bytes_; }
  uint64_t device_bytes_peak() const override { return device_bytes_peak_; }

  // Internal (VulkanBuffer): registers / releases an allocation.
  void release(vk::Allocation* a);

 private:
  struct Resolved {
    vk::Allocation* alloc;
    size_t offset;
    uint64_t addr;  // device address of the first byte
  };
  // Throws Error(kInternal) naming op/name when t is not in this backend's memory or the
  // `bytes` after its start run past its allocation.
  Resolved resolve(const Tensor& t, size_t bytes, const char* op, const char* name) const;
  uint64_t addr_of(const Tensor& t, const char* op, const char* name) const {
    return resolve(t, t.nbytes(), op, name).addr;
  }
  // The split-K partials buffer, grown to `bytes`; its device address.
  uint64_t attention_partials(size_t bytes, const char* op);
  // Split-K count for n_rows = n_tokens * n_head query rows (VulkanOptions::attention_splits).
  int64_t attention_split_count(int64_t n_rows) const;
  std::string variant(const char* shader, bool weights, DType wdtype, bool s16, bool sg) const;
  vk::Allocation& staging(vk::MemoryUse use);
  void upload(const Resolved& dst, const void* src, size_t bytes);
  void download(void* dst, const Resolved& src, size_t bytes);

  VulkanOptions options_;
  std::unique_ptr<vk::Device> device_;
  std::unique_ptr<vk::Pipelines> pipelines_;
  std::unique_ptr<vk::Stream> stream_;
  vk::AddressMap map_;
  std::unique_ptr<vk::Allocation> upload_staging_, readback_staging_;
  std::unique_ptr<DeviceBuffer> argmax_out_;
  std::unique_ptr<DeviceBuffer> attn_partial_;  // split-K attention partials, grown on demand
  std::unique_ptr<DeviceBuffer> paged_layout_;  // paged_attention arrays too big for the arena
  std::vector<int32_t> paged_host_;             // their host image (pos, seq, block table)
  std::vector<uint8_t> host_stage_;             // begin/end_host_access on non-mapped memory
  uint64_t device_bytes_ = 0;
  uint64_t device_bytes_peak_ = 0;
};

std::unique_ptr<VulkanBackend> make_vulkan_backend(const VulkanOptions& options);
// The devices ranks run on, rank r on list[r % size]: `requested` (BackendOptions::devices)
// when not empty, else the comma-separated indices in `env` (SHARDLM_VULKAN_DEVICES), else every
// usable GPU in `all`, or the CPU devices (lavapipe) when there is no GPU -- so a one-device
// machine runs every rank on device 0 (TP on one device). Throws Error(kInvalidArg) for a
// malformed env value.
std::vector<int> vulkan_rank_devices(const std::vector<int>& requested, const char* env,
                                     const std::vector<VulkanDeviceInfo>& all);
// The registry's factory: device from vulkan_rank_devices(options.devices,
// $SHARDLM_VULKAN_DEVICES, list_vulkan_devices()); pipeline cache file from the setting
// pipeline_cache=PATH, else $SHARDLM_VULKAN_PIPELINE_CACHE when set (other settings: an error). Refuses with both numbers when options.planned_bytes
// exceeds this rank's share of the device's memory (GPUs; not CPU devices, whose heap size is
// nominal).
std::unique_ptr<Backend> make_vulkan_backend(const BackendOptions& options);

}  // namespace shardlm
