// The CPU backend: host memory from mimalloc, weights used in place from the mapped pack
// (f32/f16/bf16 all computed directly with f32 accumulation), ops run synchronously by
// kernels/cpu on this backend's own thread pool. One instance per rank.
#pragma once

#include <memory>

#include "runtime/backend/backend.h"

namespace shardlm {

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options);

}  // namespace shardlm
