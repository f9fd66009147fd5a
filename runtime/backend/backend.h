// The Backend interface: where a rank's tensors live and how its ops run. A backend allocates
// memory (weights vs scratch), imports host weights (zero copy on CPU, upload on GPUs), copies
// between host and device, and runs eager ops on tensors it owns. No graph compiler and no
// kernels here: each backend forwards its ops to its kernels/<device> implementation.
// Token ids and positions are passed as small host arrays; the backend uploads them if needed.
// Shape comments use the dimension glossary; ops throw Error(kInternal) on shape mismatches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/tensor.h"

namespace shardlm {

class Communicator;

enum class MemoryKind : uint8_t { kWeights, kScratch };

// What matmuls with bf16 weights do with their f32 activations.
enum class MatmulActivations : uint8_t {
  kF32,   // exact: f32 activations times the widened weights, f32 sums
  kBf16,  // activations rounded to bf16 once per matmul, bf16 x bf16 products summed in f32
          // (what PyTorch does for a bf16 model); faster where the CPU has bf16 dot products
  kAuto,  // the default: kBf16 where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX at
          // the ISA level in use), kF32 elsewhere (no speed to gain there, only rounding)
};
const char* matmul_activations_name(MatmulActivations a);  // "f32", "bf16", "auto"
// Parses "f32" | "bf16" | "auto"; nullopt for anything else.
std::optional<MatmulActivations> parse_matmul_activations(std::string_view s);

// A backend-specific setting, "key=value" (see each backend's header for its keys).
struct BackendSetting {
  std::string key, value;
};
// Parses "key=value,key=value" (spaces around keys and values and empty items are ignored; ""
// gives none). Throws
// Error(kInvalidArg) naming the item that has no '=' or an empty key.
std::vector<BackendSetting> parse_backend_settings(std::string_view text);

// One allocation owned by a backend.
class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  virtual void* data() const = 0;
  virtual size_t size() const = 0;
};

struct BackendOptions {
  int n_threads = 1;  // CPU worker threads for this backend instance (one rank)

  // Device backends (cuda): this rank's place in its tensor-parallel group and the devices the
  // group is spread over. Rank r runs on devices[r % devices.size()] (every visible device when
  // empty), so a group larger than the device list puts several ranks on one device.
  int rank = 0;
  int n_ranks = 1;
  std::vector<int> devices;
  // Device backends: the share of a device's memory its ranks may allocate together (0: 0.9),
  // and the bytes this rank's memory plan will allocate (weights + workspace + KV); when
  // nonzero the backend refuses up front, with both numbers, if they do not fit the device.
  double mem_fraction = 0;
  uint64_t planned_bytes = 0;
  // Ops whose result for one token row must not depend on what else is in the step (other
  // sequences, chunking) or on the thread count: bit-identical logits per sequence. CPU only.
  bool deterministic = false;
  MatmulActivations activations = MatmulActivations::kAuto;
  // Backend-specific settings. A backend refuses keys it does not know (kInvalidArg naming the
  // key and the keys it takes); where a setting has an environment variable, the variable is
  // read only when the setting is absent.
  std::vector<BackendSetting> settings;
};

// The value of setting `key` in `options`, else of environment variable `env` (when non-null and
// set to a non-empty value), else nullopt.
std::optional<std::string> backend_setting(const BackendOptions& options, std::string_view key,
                                           const char* env);
// Where a value of backend_setting came from, for messages: "setting isa=sse9" or
// "SHARDLM_CPU_ISA=sse9".
std::string backend_setting_origin(const BackendOptions& options, std::string_view key,
                                   const char* env, const std::string& value);
// A boolean setting: "1|true|on" or "0|false|off" (else Error(kInvalidArg) naming it);
// `fallback` when neither the setting nor the variable is given.
bool backend_flag(const BackendOptions& options, std::string_view key, const char* env,
                  bool fallback);
// Throws Error(kInvalidArg) "<backend> backend: unknown setting 'k' (it takes: a, b)" for the
// first setting whose key is not in `known`.
void check_backend_settings(const BackendOptions& options, const char* backend,
                            std::initializer_list<std::string_view> known);

// Where a step's tokens sit in their sequences, as the paged-attention op reads it (host arrays,
// views into a StepInput; see runtime/model/step_input.h).
struct StepLayout {
  std::span<const int32_t> positions;    // [n_tokens]
  std::span<const int32_t> seq_starts;   // [n_seqs + 1]
  std::span<const int32_t> block_table;  // [n_seqs, max_blocks], -1 padded
  int64_t max_blocks = 0;
  int64_t block_size = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Memory. Scratch buffers are zero-filled.
  virtual std::unique_ptr<DeviceBuffer> allocate(size_t bytes, MemoryKind kind) = 0;
  // A tensor of `shape` in a fresh buffer appended to `owner`.
  Tensor allocate_tensor(DType dtype, std::initializer_list<int64_t> shape, MemoryKind kind,
                         std::unique_ptr<DeviceBuffer>& owner);

  // Makes a host weight usable by this backend's ops. Returns `host` itself (zero copy) when the
  // backend computes with that dtype in host memory; otherwise fills `storage` and returns a
  // tensor in it. `host` must outlive the returned tensor in the zero-copy case.
  virtual Tensor import_weight(const Tensor& host, std::unique_ptr<DeviceBuffer>& storage) = 0;
  // True when import_weight(t) for a host tensor of `dtype` does not copy.
  virtual bool uses_host_weights_in_place(DType dtype) const = 0;
  // True when the ops take weights of `dtype` (matmul, embed). Float types everywhere; the
  // quantized types only where a backend has their kernels (bind_weights refuses the others).
  virtual bool supports_weight_dtype(DType dtype) const { return !is_quantized(dtype); }
  // True when store_kv / paged_attention take pools of `dtype` (KvPool refuses the others).
  virtual bool supports_kv_dtype(DType dtype) const { return is_kv_dtype(dtype); }

  virtual void copy_from_host(const Tensor& dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const Tensor& src, size_t bytes) = 0;
  // Waits for all queued work (CPU ops are synchronous, so a no-op there).
  virtual void synchronize() = 0;

  // ---- Optional seams for device backends (the defaults suit host-memory backends) ----

  // Where this backend's tensors live: allocate_tensor tags them with it, and collectives are
  // told it (Communicator). Host for host-memory backends (the default).
  virtual MemorySpace memory_space() const { return MemorySpace::kHost; }

  // This rank's communicator for device memory, built on `host`, this rank's host communicator
  // (threads of one process or a group of one; it must outlive the result and serves the
  // host-memory collectives). Collective: every rank calls it at the same time. Returns null
  // when `host` serves device tensors too, the default; the cuda backend returns an NCCL or
  // device-sharing communicator, the vulkan backend one that maps device memory.
  virtual std::unique_ptr<Communicator> make_communicator(Communicator& host);

  // Bracket one forward pass of `n_tokens` tokens. Between them no op result is read on the
  // host, so a backend may record the ops and launch them as one unit (the cuda backend
  // captures single-token decode steps in a CUDA graph). end_forward() launches what was
  // recorded. Defaults do nothing.
  virtual void begin_forward(int64_t n_tokens);
  virtual void end_forward();

  // The most device memory this backend has held at once (weights, scratch, KV cache), in
  // bytes; 0 for host-memory backends, whose memory is the process's RSS.
  virtual uint64_t device_bytes_peak() const { return 0; }

  // The largest element of a row and its index (ties: the lowest, like std::max_element),
  // found where the tensor lives, so a greedy decode step reads back one pair, not the row.
  //   x [n] f32.   Default: copy_to_host and scan.
  struct MaxElement {
    float value = 0;
    int64_t index = -1;
  };
  virtual MaxElement max_element(const Tensor& x);

  // ---- Ops. Activations are f32; weights f32/f16/bf16 ----

  // Vocab-parallel lookup; ids outside [vocab_start, vocab_start + n_vocab_local) give zeros.
  //   ids [n_tokens] (host), table [n_vocab_local, n_embd], out [n_tokens, n_embd]
  virtual void embed(std::span<const int32_t> ids, const Tensor& table, int64_t vocab_start,
                     const Tensor& out) = 0;
  // x [n_rows, n], w [n] (f32), out [n_rows, n] (may be x)
  virtual void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out) = 0;
  // x [n_tokens, n_in], w [n_out, n_in], bias [n_out] f32 or null data, y [n_tokens, n_out]
  virtual void matmul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) = 0;
  // In place. x [n_tokens, n_head, head_dim], pos [n_tokens] (host), inv_freq [head_dim / 2]
  virtual void rope(const Tensor& x, std::span<const int32_t> pos, const Tensor& inv_freq) = 0;
  // Causal attention of new queries against one sequence's cache (row j = position j).
  //   q [n_tokens, n_head, head_dim], k/v [n_kv, n_head_kv, head_dim], pos [n_tokens] (host),
  //   out [n_tokens, n_head * head_dim]
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v,
                         std::span<const int32_t> pos, int64_t sliding_window, float scale,
                         const Tensor& out) = 0;
  // ---- Paged KV (the step engine). Defaults throw Error(kUnsupported) naming the backend ----

  // Writes each token's K and V rows into the pools at its slot (slot < 0: skipped), converted
  // to the pools' dtype (is_kv_dtype: f32, f16, bf16, f8e4m3; supports_kv_dtype).
  //   k, v [n_tokens, n_head_kv, head_dim] f32, slots [n_tokens] (host),
  //   k_pool, v_pool [n_slots, n_head_kv, head_dim]
  virtual void store_kv(const Tensor& k, const Tensor& v, std::span<const int64_t> slots,
                        const Tensor& k_pool, const Tensor& v_pool);
  // Causal attention of a step's queries, each against its own sequence's keys at positions
  // <= its position (and inside the sliding window when > 0), read through the block table.
  //   q [n_tokens, n_head, head_dim], k_pool/v_pool [n_slots, n_head_kv, head_dim],
  //   out [n_tokens, n_head * head_dim]
  virtual void paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                               const StepLayout& layout, int64_t sliding_window, float scale,
                               const Tensor& out);

  // gate_up [n_tokens, 2 * n_ff], out [n_tokens, n_ff]
  virtual void swiglu(const Tensor& gate_up, const Tensor& out) = 0;
  // y += x.   y, x: same shape
  virtual void add(const Tensor& y, const Tensor& x) = 0;
  // dst = src[:, col_begin : col_begin + n_cols].   src [n_rows, n_src_cols], dst [n_rows, n_cols]
  virtual void copy_columns(const Tensor& src, int64_t col_begin, const Tensor& dst) = 0;
};

}  // namespace shardlm
