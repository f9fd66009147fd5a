// BackendRegistry and the list of built-in backends.
#include "runtime/backend/registry.h"

#include "runtime/backend/cpu/cpu_backend.h"
#include "runtime/core/status.h"
#ifdef SHARDLM_HAVE_VULKAN
#include "runtime/backend/vulkan/vulkan_backend.h"
#endif
#ifdef SHARDLM_HAVE_CUDA
#include "runtime/backend/cuda/cuda_backend.h"
#endif

namespace shardlm {

void BackendRegistry::add(const std::string& name, BackendFactory factory) {
  for (auto& e : entries_) {
    if (e.first == name) {
      e.second = std::move(factory);
      return;
    }
  }
  entries_.emplace_back(name, std::move(factory));
}

bool BackendRegistry::has(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e.first == name) return true;
  }
  return false;
}

std::vector<std::string> BackendRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.first);
  return out;
}

std::unique_ptr<Backend> BackendRegistry::create(const std::string& name,
                                                 const BackendOptions& options) const {
  for (const auto& e : entries_) {
    if (e.first == name) return e.second(options);
  }
  std::string list;
  for (const auto& e : entries_) list += (list.empty() ? "" : ", ") + e.first;
  fail(StatusCode::kInvalidArg, "unknown backend '" + name + "' (available: " + list + ")");
}

BackendRegistry builtin_backends() {
  BackendRegistry r;
  r.add("cpu", [](const BackendOptions& o) { return make_cpu_backend(o); });
#ifdef SHARDLM_HAVE_VULKAN
  r.add("vulkan", [](const BackendOptions& o) { return make_vulkan_backend(o); });
#endif
#ifdef SHARDLM_HAVE_CUDA
  r.add("cuda", [](const BackendOptions& o) { return make_cuda_backend(o); });
#endif
  return r;
}

}  // namespace shardlm
