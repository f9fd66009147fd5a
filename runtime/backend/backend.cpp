// Backend helpers shared by every implementation.
#include "runtime/backend/backend.h"

#include <cstdlib>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/core/status.h"

namespace shardlm {

const char* matmul_activations_name(MatmulActivations a) {
  switch (a) {
    case MatmulActivations::kBf16:
      return "bf16";
    case MatmulActivations::kAuto:
      return "auto";
    case MatmulActivations::kF32:
      break;
  }
  return "f32";
}

std::optional<MatmulActivations> parse_matmul_activations(std::string_view s) {
  if (s == "f32") return MatmulActivations::kF32;
  if (s == "bf16") return MatmulActivations::kBf16;
  if (s == "auto") return MatmulActivations::kAuto;
  return std::nullopt;
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

std::vector<BackendSetting> parse_backend_settings(std::string_view text) {
  std::vector<BackendSetting> out;
  while (!trim(text).empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;  // "a=1,,b=2" and a trailing comma
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || trim(item.substr(0, eq)).empty()) {
      fail(StatusCode::kInvalidArg, "backend setting '" + std::string(item) +
                                        "': expected key=value (items separated by commas)");
    }
    out.push_back({std::string(trim(item.substr(0, eq))), std::string(trim(item.substr(eq + 1)))});
  }
  return out;
}

std::optional<std::string> backend_setting(const BackendOptions& options, std::string_view key,
                                           const char* env) {
  for (const BackendSetting& s : options.settings) {
    if (s.key == key) return s.value;
  }
  if (env != nullptr) {
    const char* v = std::getenv(env);
    if (v != nullptr && *v != '\0') return std::string(v);
  }
  return std::nullopt;
}

std::string backend_setting_origin(const BackendOptions& options, std::string_view key,
                                   const char* env, const std::string& value) {
  for (const BackendSetting& s : options.settings) {
    if (s.key == key) return "setting " + s.key + "=" + value;
  }
  return std::string(env ? env : "") + "=" + value;
}

bool backend_flag(const BackendOptions& options, std::string_view key, const char* env,
                  bool fallback) {
  const std::optional<std::string> v = backend_setting(options, key, env);
  if (!v) return fallback;
  if (*v == "1" || *v == "true" || *v == "on") return true;
  if (*v == "0" || *v == "false" || *v == "off") return false;
  fail(StatusCode::kInvalidArg,
       backend_setting_origin(options, key, env, *v) + ": expected 1, true, on, 0, false or off");
}

void check_backend_settings(const BackendOptions& options, const char* backend,
                            std::initializer_list<std::string_view> known) {
  for (const BackendSetting& s : options.settings) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || s.key == k;
    if (ok) continue;
    std::string list;
    for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    fail(StatusCode::kInvalidArg, std::string(backend) + " backend: unknown setting '" + s.key +
                                      "' (it takes: " + (list.empty() ? "none" : list) + ")");
  }
}

Tensor Backend::allocate_tensor(DType dtype, std::initializer_list<int64_t> shape, MemoryKind kind,
                                std::unique_ptr<DeviceBuffer>& owner) {
  Tensor t(static_cast<void*>(nullptr), dtype, shape);
  owner = allocate(t.nbytes(), kind);
  t.data = owner->data();
  t.space = memory_space();
  return t;
}

std::unique_ptr<Communicator> Backend::make_communicator(Communicator&) {
  return nullptr;
}

void Backend::begin_forward(int64_t) {}
void Backend::end_forward() {}

void Backend::store_kv(const Tensor&, const Tensor&, std::span<const int64_t>, const Tensor&,
                       const Tensor&) {
  fail(StatusCode::kUnsupported,
       std::string("the ") + name() + " backend has no paged KV cache yet; use --backend cpu");
}

void Backend::paged_attention(const Tensor&, const Tensor&, const Tensor&, const StepLayout&,
                              int64_t, float, const Tensor&) {
  fail(StatusCode::kUnsupported,
       std::string("the ") + name() + " backend has no paged attention yet; use --backend cpu");
}

Backend::MaxElement Backend::max_element(const Tensor& x) {
  if (x.dtype != DType::kF32 || x.data == nullptr) {
    fail(
        StatusCode::kInternal,
        std::string(name()) + " max_element: x must be a non-null f32 tensor, got " + x.describe());
  }
  std::vector<float> host(static_cast<size_t>(x.numel()));
  copy_to_host(host.data(), x, host.size() * sizeof(float));
  MaxElement best;
  for (size_t i = 0; i < host.size(); ++i) {  // strict >: ties keep the lowest index
    if (best.index < 0 || host[i] > best.value) best = {host[i], static_cast<int64_t>(i)};
  }
  return best;
}

}  // namespace shardlm
