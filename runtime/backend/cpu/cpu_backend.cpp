// CpuBackend: shape checks, then a call into kernels/cpu with this rank's pool, ISA level and
// workspace.
#include "runtime/backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/kernel_table.h"
#include "runtime/core/aligned_buffer.h"
#include "runtime/core/cpu_affinity.h"
#include "runtime/core/status.h"
#include "runtime/core/thread_pool.h"

namespace shardlm {

namespace {

class CpuBuffer final : public DeviceBuffer {
 public:
  CpuBuffer(size_t bytes, bool zero) : buf_(bytes, kHostAlignment, zero) {}
  void* data() const override { return buf_.data(); }
  size_t size() const override { return buf_.size(); }

 private:
  AlignedBuffer buf_;
};

[[noreturn]] void fail_op(const char* op, const std::string& what) {
  fail(StatusCode::kInternal, std::string("cpu ") + op + ": " + what);
}

// The message (shape descriptions) is built only when the check fails: ops run per layer.
#define CPU_CHECK(ok, op, what)   \
  do {                            \
    if (!(ok)) fail_op(op, what); \
  } while (0)

void check_f32(const Tensor& t, const char* op, const char* name) {
  CPU_CHECK(t.dtype == DType::kF32 && t.data != nullptr, op,
            std::string(name) + " must be a non-null f32 tensor, got " + t.describe());
}

int amx_splits_setting(const BackendOptions& o) {
  const std::optional<std::string> v = backend_setting(o, "amx_splits", "SHARDLM_CPU_AMX_SPLITS");
  if (!v) return 3;
  if (*v != "1" && *v != "2" && *v != "3") {
    fail(StatusCode::kInvalidArg,
         "cpu backend " + backend_setting_origin(o, "amx_splits", "SHARDLM_CPU_AMX_SPLITS", *v) +
             ": expected 1, 2 or 3");
  }
  return (*v)[0] - '0';
}

// kv_touch=on|off (SHARDLM_CPU_KV_TOUCH): decode attention reads each chunk's KV lines in
// address order first (cpu::Context::touch_kv); absent: cpu::kv_touch_pays().
bool kv_touch_setting(const BackendOptions& o) {
  const std::optional<std::string> v = backend_setting(o, "kv_touch", "SHARDLM_CPU_KV_TOUCH");
  if (!v) return cpu::kv_touch_pays();
  if (*v != "on" && *v != "off") {
    fail(StatusCode::kInvalidArg,
         "cpu backend " + backend_setting_origin(o, "kv_touch", "SHARDLM_CPU_KV_TOUCH", *v) +
             ": expected on or off");
  }
  return *v == "on";
}

// pin_threads=on|off (SHARDLM_CPU_PIN_THREADS; default on): the CPUs this rank's pool workers are
// pinned to (cpu_affinity.h: rank r's slice of the process's CPUs, one per core first; none
// unless the ranks' threads take all of them). Unpinned, a worker that slept between steps (the 50
// us spin ran out: another engine's step, sampling, serving) may wake beside the submitting thread
// and share its core until the scheduler moves one: int4g128 against bf16 decode with steps taking
// turns read 2.35-2.71x unpinned and 2.92-3.00x pinned (Zen 4, 2 cores, 5 runs each, alternated).
std::vector<int> pinned_worker_cpus(const BackendOptions& o) {
  if (!backend_flag(o, "pin_threads", "SHARDLM_CPU_PIN_THREADS", true)) return {};
  return worker_cpus_for_rank(allowed_cpus_by_core(), o.rank, o.n_ranks, o.n_threads);
}

cpu::Context make_context(ThreadPool& pool, cpu::Workspace& workspace, const BackendOptions& o) {
  check_backend_settings(o, "cpu", {"isa", "amx_splits", "kv_touch", "pin_threads"});
  cpu::Context ctx{pool, cpu_backend_isa(o), workspace, amx_splits_setting(o)};
  ctx.bf16_activations = cpu_bf16_activations(o.activations, ctx.isa);
  ctx.batch_invariant = o.deterministic;
  ctx.touch_kv = kv_touch_setting(o);
  return ctx;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& o)
      : pool_(o.n_threads, pinned_worker_cpus(o)),
        ctx_(make_context(pool_, workspace_, o)),
        deterministic_(o.deterministic) {}
  const char* name() const override { return "cpu"; }

  // Greedy decode: scan this rank's logits where they are (no copy).
  MaxElement max_element(const Tensor& x) override {
    check_f32(x, "max_element", "x");
    const int64_t i = cpu::argmax(x.as<float>(), x.numel());
    return {x.as<float>()[i], i};
  }

  std::unique_ptr<DeviceBuffer> allocate(size_t bytes, MemoryKind kind) override {
    return std::make_unique<CpuBuffer>(bytes, kind == MemoryKind::kScratch);
  }

  bool uses_host_weights_in_place(DType) const override { return true; }
  bool supports_weight_dtype(DType) const override { return true; }

  Tensor import_weight(const Tensor& host, std::unique_ptr<DeviceBuffer>&) override {
    return host;  // every pack dtype is computed with directly: zero copy
  }

  void copy_from_host(const Tensor& dst, const void* src, size_t bytes) override {
    CPU_CHECK(bytes <= dst.nbytes(), "copy_from_host", "too many bytes for " + dst.describe());
    if (bytes) std::memcpy(dst.data, src, bytes);
  }
  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override {
    CPU_CHECK(bytes <= src.nbytes(), "copy_to_host", "too many bytes for " + src.describe());
    if (bytes) std::memcpy(dst, src.data, bytes);
  }
  void synchronize() override {}

  void embed(std::span<const int32_t> ids, const Tensor& table, int64_t vocab_start,
             const Tensor& out) override {
    check_f32(out, "embed", "out");
    const int64_t n_tokens = static_cast<int64_t>(ids.size());
    CPU_CHECK(table.ndim == 2 && out.numel() == n_tokens * table.dim(1), "embed",
              "table " + table.describe() + ", out " + out.describe());
    cpu::embed(ctx_, ids.data(), n_tokens, table.data, table.dtype, table.dim(0), vocab_start,
               table.dim(1), out.as<float>());
  }

  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out) override {
    check_f32(x, "rms_norm", "x");
    check_f32(w, "rms_norm", "w");
    check_f32(out, "rms_norm", "out");
    const int64_t n = w.numel();
    CPU_CHECK(n > 0 && x.numel() % n == 0 && out.numel() == x.numel(), "rms_norm",
              "x " + x.describe() + ", w " + w.describe() + ", out " + out.describe());
    cpu::rms_norm(ctx_, x.as<float>(), w.as<float>(), x.numel() / n, n, eps, out.as<float>());
  }

  void matmul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) override {
    check_f32(x, "matmul", "x");
    check_f32(y, "matmul", "y");
    CPU_CHECK(w.ndim == 2 && w.data != nullptr, "matmul", "w must be 2-D, got " + w.describe());
    const int64_t n_out = w.dim(0), n_in = w.dim(1);
    CPU_CHECK(!is_quantized(w.dtype) || n_in % quant_scale_inputs(w.dtype) == 0, "matmul",
              "quantized rows of whole scale groups, got " + w.describe());
    CPU_CHECK(x.numel() % n_in == 0, "matmul", "x " + x.describe() + " vs w " + w.describe());
    const int64_t n_tokens = x.numel() / n_in;
    CPU_CHECK(y.numel() == n_tokens * n_out, "matmul",
              "y " + y.describe() + " for x " + x.describe() + " @ w " + w.describe());
    const float* b = nullptr;
    if (bias.data != nullptr) {
      check_f32(bias, "matmul", "bias");
      CPU_CHECK(bias.numel() == n_out, "matmul", "bias " + bias.describe() + " vs " + w.describe());
      b = bias.as<float>();
    }
    if (!deterministic_ || n_tokens <= cpu::kGemvMaxTokens) {
      cpu::matmul(ctx_, x.as<float>(), n_tokens, n_in, w.data, w.dtype, n_out, b, y.as<float>());
      return;
    }
    // Deterministic: every row through the GEMV kernel, whose arithmetic per output element
    // does not depend on how many tokens share the call, in groups of kGemvMaxTokens tokens.
    // (The GEMM paths sum in another order, so a token's result would depend on its batch.)
    for (int64_t t0 = 0; t0 < n_tokens; t0 += cpu::kGemvMaxTokens) {
      const int64_t nt = std::min<int64_t>(cpu::kGemvMaxTokens, n_tokens - t0);
      cpu::matmul(ctx_, x.as<float>() + t0 * n_in, nt, n_in, w.data, w.dtype, n_out, b,
                  y.as<float>() + t0 * n_out);
    }
  }

  void rope(const Tensor& x, std::span<const int32_t> pos, const Tensor& inv_freq) override {
    check_f32(x, "rope", "x");
    check_f32(inv_freq, "rope", "inv_freq");
    CPU_CHECK(x.ndim == 3 && x.dim(0) == static_cast<int64_t>(pos.size()) &&
                  inv_freq.numel() * 2 == x.dim(2),
              "rope", "x " + x.describe() + ", inv_freq " + inv_freq.describe());
    cpu::rope(ctx_, x.as<float>(), x.dim(0), x.dim(1), x.dim(2), pos.data(), inv_freq.as<float>());
  }

  void attention(const Tensor& q, const Tensor& k, const Tensor& v, std::span<const int32_t> pos,
                 int64_t sliding_window, float scale, const Tensor& out) override {
    check_f32(q, "attention", "q");
    check_f32(k, "attention", "k");
    check_f32(v, "attention", "v");
    check_f32(out, "attention", "out");
    const int64_t n_tokens = static_cast<int64_t>(pos.size());
    CPU_CHECK(q.ndim == 3 && k.ndim == 3 && q.dim(0) == n_tokens && k.dim(2) == q.dim(2) &&
                  v.numel() == k.numel() && q.dim(1) % k.dim(1) == 0 && out.numel() == q.numel(),
              "attention", "q " + q.describe() + ", k " + k.describe() + ", out " + out.describe());
    for (int32_t p : pos) {
      CPU_CHECK(p >= 0 && p < k.dim(0), "attention",
                "position " + std::to_string(p) + " outside cache of " + std::to_string(k.dim(0)));
    }
    cpu::attention(ctx_, q.as<float>(), k.as<float>(), v.as<float>(), pos.data(), n_tokens,
                   k.dim(0), q.dim(1), k.dim(1), q.dim(2), sliding_window, scale, out.as<float>());
  }

  void store_kv(const Tensor& k, const Tensor& v, std::span<const int64_t> slots,
                const Tensor& k_pool, const Tensor& v_pool) override {
    check_f32(k, "store_kv", "k");
    check_f32(v, "store_kv", "v");
    const int64_t n_tokens = static_cast<int64_t>(slots.size());
    CPU_CHECK(k.ndim == 3 && k.dim(0) == n_tokens && v.numel() == k.numel() && k_pool.ndim == 3 &&
                  k_pool.dim(1) == k.dim(1) && k_pool.dim(2) == k.dim(2) &&
                  v_pool.numel() == k_pool.numel() && v_pool.dtype == k_pool.dtype &&
                  is_kv_dtype(k_pool.dtype),
              "store_kv", "k " + k.describe() + ", k_pool " + k_pool.describe());
    for (int64_t s : slots) {
      CPU_CHECK(
          s < k_pool.dim(0), "store_kv",
          "slot " + std::to_string(s) + " outside the pool of " + std::to_string(k_pool.dim(0)));
    }
    cpu::store_kv(ctx_, k.as<float>(), v.as<float>(), slots.data(), n_tokens, k.dim(1), k.dim(2),
                  k_pool.dtype, k_pool.data, v_pool.data);
  }

  void paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                       const StepLayout& layout, int64_t sliding_window, float scale,
                       const Tensor& out) override {
    check_f32(q, "paged_attention", "q");
    check_f32(out, "paged_attention", "out");
    const int64_t n_tokens = static_cast<int64_t>(layout.positions.size());
    const int64_t n_seqs = static_cast<int64_t>(layout.seq_starts.size()) - 1;
    CPU_CHECK(q.ndim == 3 && q.dim(0) == n_tokens && k_pool.ndim == 3 &&
                  q.dim(2) == k_pool.dim(2) && q.dim(1) % k_pool.dim(1) == 0 &&
                  out.numel() == q.numel() && v_pool.numel() == k_pool.numel() &&
                  v_pool.dtype == k_pool.dtype && is_kv_dtype(k_pool.dtype) &&
                  layout.block_size > 0 && n_seqs >= 1 &&
                  static_cast<int64_t>(layout.block_table.size()) == n_seqs * layout.max_blocks,
              "paged_attention", "q " + q.describe() + ", k_pool " + k_pool.describe());
    const PagedKvView kv{k_pool.data,       v_pool.data,   k_pool.dtype,
                         layout.block_size, k_pool.dim(1), k_pool.dim(2)};
    const StepLayoutView sl{layout.positions.data(),   n_tokens,
                            layout.seq_starts.data(),  n_seqs,
                            layout.block_table.data(), layout.max_blocks};
    cpu::paged_attention(ctx_, q.as<float>(), q.dim(1), kv, sl, sliding_window, scale,
                         deterministic_, out.as<float>());
  }

  void swiglu(const Tensor& gate_up, const Tensor& out) override {
    check_f32(gate_up, "swiglu", "gate_up");
    check_f32(out, "swiglu", "out");
    CPU_CHECK(gate_up.ndim == 2 && gate_up.dim(1) % 2 == 0 && out.numel() == gate_up.numel() / 2,
              "swiglu", "gate_up " + gate_up.describe() + ", out " + out.describe());
    cpu::swiglu(ctx_, gate_up.as<float>(), gate_up.dim(0), gate_up.dim(1) / 2, out.as<float>());
  }

  void add(const Tensor& y, const Tensor& x) override {
    check_f32(y, "add", "y");
    check_f32(x, "add", "x");
    CPU_CHECK(y.numel() == x.numel(), "add", "y " + y.describe() + ", x " + x.describe());
    cpu::add(ctx_, y.as<float>(), x.as<float>(), y.numel());
  }

  void copy_columns(const Tensor& src, int64_t col_begin, const Tensor& dst) override {
    check_f32(src, "copy_columns", "src");
    check_f32(dst, "copy_columns", "dst");
    const int64_t n_rows = src.rows();
    const int64_t n_src_cols = src.row_size();
    CPU_CHECK(n_rows > 0 && dst.numel() % n_rows == 0, "copy_columns",
              "src " + src.describe() + ", dst " + dst.describe());
    const int64_t n_cols = dst.numel() / n_rows;
    CPU_CHECK(col_begin >= 0 && col_begin + n_cols <= n_src_cols, "copy_columns",
              "columns [" + std::to_string(col_begin) + ", +" + std::to_string(n_cols) + ") of " +
                  src.describe());
    cpu::copy_columns(ctx_, src.as<float>(), n_rows, n_src_cols, col_begin, n_cols,
                      dst.as<float>());
  }

 private:
  ThreadPool pool_;
  cpu::Workspace workspace_;
  cpu::Context ctx_;
  bool deterministic_ = false;
};

}  // namespace

// kAuto: bf16 where the ISA level in use multiplies bf16 natively.
bool cpu_bf16_activations(MatmulActivations a, cpu::Isa isa) {
  if (a != MatmulActivations::kAuto) return a == MatmulActivations::kBf16;
  return isa >= cpu::Isa::kAmx || (isa >= cpu::Isa::kAvx512 && cpu::bf16_dot_supported());
}


cpu::Isa cpu_backend_isa(const BackendOptions& options) {
  const std::optional<std::string> v = backend_setting(options, "isa", "SHARDLM_CPU_ISA");
  if (!v) return cpu::detect_isa();
  const std::optional<cpu::Isa> cap = cpu::parse_isa(*v);
  if (!cap) {
    fail(StatusCode::kInvalidArg,
         "cpu backend " + backend_setting_origin(options, "isa", "SHARDLM_CPU_ISA", *v) +
             ": unknown ISA level (scalar, avx2, avx512, amx)");
  }
  return cpu::detect_isa(*cap);
}

std::string cpu_matmul_path(const BackendOptions& options) {
  const cpu::Isa isa = cpu_backend_isa(options);
  std::string s = cpu::isa_name(isa);
  const char* chosen = options.activations == MatmulActivations::kAuto ? " (auto)" : "";
  if (cpu_bf16_activations(options.activations, isa)) {
    s += isa >= cpu::Isa::kAmx ? ", bf16 activations (amx)"
         : isa >= cpu::Isa::kAvx512 && cpu::bf16_dot_supported()
             ? ", bf16 activations (avx512-bf16)"
             : ", bf16 activations (rounded, f32 products)";
  } else {
    s += ", f32 activations";
  }
  return s + chosen;
}

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options) {
  return std::make_unique<CpuBackend>(options);
}

}  // namespace shardlm
