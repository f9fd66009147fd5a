// Backend registry: maps a name ("cpu", and "cuda" / "vulkan" when built) to a factory. A
// registry is a value built by the caller (builtin_backends() lists what this build has); there
// is no global registration. Not a plugin loader: no dlopen.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend/backend.h"

namespace shardlm {

using BackendFactory = std::function<std::unique_ptr<Backend>(const BackendOptions&)>;

class BackendRegistry {
 public:
  void add(const std::string& name, BackendFactory factory);
  bool has(const std::string& name) const;
  std::vector<std::string> names() const;
  // Throws Error(kInvalidArg) "unknown backend 'x' (available: cpu, ...)".
  std::unique_ptr<Backend> create(const std::string& name, const BackendOptions& options) const;

 private:
  std::vector<std::pair<std::string, BackendFactory>> entries_;
};

// The backends compiled into this build.
BackendRegistry builtin_backends();

}  // namespace shardlm
