// The CPU backend: host memory from mimalloc, weights used in place from the mapped pack
// (f32/f16/bf16 all computed directly with f32 accumulation), ops run synchronously by
// kernels/cpu on this backend's own thread pool at the best ISA level of this machine.
// One instance per rank.
//
// Settings (BackendOptions::settings; each environment variable is read only when its setting is
// absent; unknown keys are an error):
//   isa=scalar|avx2|avx512|amx   (SHARDLM_CPU_ISA) caps the kernel ISA level (never above what
//                                the CPU supports); an unknown name is an error
//   amx_splits=1|2|3             (SHARDLM_CPU_AMX_SPLITS) bf16 parts per activation in the AMX
//                                prefill GEMM (default 3 = exact; see kernels/cpu/gemm_amx.h)
//   kv_touch=on|off              (SHARDLM_CPU_KV_TOUCH) decode attention reads each chunk's KV
//                                lines in address order first (default: on for AMD)
//   pin_threads=on|off           (SHARDLM_CPU_PIN_THREADS) pins this rank's pool workers, one per
//                                core, to its slice of the process's CPUs (default on; nothing is
//                                pinned unless the ranks' threads take every CPU of the process's
//                                mask; runtime/core/cpu_affinity.h)
// BackendOptions::activations = kBf16 rounds the activations of matmuls with bf16 weights to bf16
// (VDPBF16PS on AVX-512 BF16 CPUs; see kernels/cpu/cpu_ops.h).
#pragma once

#include <memory>
#include <string>

#include "kernels/cpu/isa.h"
#include "runtime/backend/backend.h"

namespace shardlm {

std::unique_ptr<Backend> make_cpu_backend(const BackendOptions& options);

// The ISA level a CPU backend created with `options` would use (detection capped by the isa
// setting). Throws Error(kInvalidArg) when the setting names no level.
cpu::Isa cpu_backend_isa(const BackendOptions& options = {});

// What its matmuls would run, for reports: "avx512, bf16 activations (avx512-bf16)".
std::string cpu_matmul_path(const BackendOptions& options);
// Whether matmuls with bf16 weights round activations to bf16 at this ISA level (kAuto resolved).
bool cpu_bf16_activations(MatmulActivations a, cpu::Isa isa);

}  // namespace shardlm
