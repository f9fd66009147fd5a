// The CPU backend: host memory from mimalloc, weights used in place from the mapped pack
// (f32/f16/bf16 all computed directly with f32 accumulation), ops run synchronously by
// kernels/cpu on this backend's own thread pool at the best ISA level of this machine.
// One instance per rank.
//
// Environment (read when a backend is created; for benchmarks and tests, not needed otherwise):
//   SHARDLM_CPU_ISA=scalar|avx2|avx512|amx   cap the kernel ISA level (never above what the
//                                            CPU supports); an unknown name is an error
//   SHARDLM_CPU_AMX_SPLITS=1|2|3             bf16 parts per activation in the AMX prefill GEMM
//                                            (default 3 = exact; see kernels/cpu/gemm_amx.h)
#pragma once

#include <memory>

#include "kernels/cpu/isa.h"
#include "runtime/backend/backend.h"

namespace shardlm {

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options);

// The ISA level a CPU backend created now would use (detection capped by SHARDLM_CPU_ISA).
// Throws Error(kInvalidArg) when SHARDLM_CPU_ISA names no level.
cpu::Isa cpu_backend_isa();

}  // namespace shardlm
