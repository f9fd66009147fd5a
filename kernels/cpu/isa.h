// Instruction-set levels of the CPU kernels and their runtime detection. Each level is a set of
// translation units compiled with its own -m flags (never the whole library with -march=native);
// the CPU backend asks detect_isa() for the best level this CPU *and* OS support and calls the
// matching kernel table. Levels are ordered: each includes everything below it.
// Not the kernels themselves (see kernel_table.h) and not a place for global state: the chosen
// level travels in cpu::Context.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardlm::cpu {

enum class Isa : int {
  kScalar = 0,  // portable C++ (any CPU)
  kAvx2 = 1,    // AVX2 + FMA + F16C (x86-64-v3)
  kAvx512 = 2,  // AVX-512 F/BW/DQ/VL (x86-64-v4)
  kAmx = 3,     // kAvx512 + AMX-TILE + AMX-BF16 (prefill GEMM of bf16 weights on tiles)
};

// "scalar", "avx2", "avx512", "amx".
const char* isa_name(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);

// The best level this CPU and OS support, at most `cap`. For AMX it also asks Linux for
// permission to use the tile state (arch_prctl(ARCH_REQ_XCOMP_PERM)); refusal drops to kAvx512.
Isa detect_isa(Isa cap = Isa::kAmx);

// True when this build has the AVX-512 BF16 kernels and this CPU and OS run them (VDPBF16PS:
// bf16 x bf16 dot products summed in f32; AMD Zen 4+, Intel Cooper Lake and Sapphire Rapids+).
bool bf16_dot_supported();
// True when this build has the AVX-512 VNNI GEMVs and the CPU and OS run them
// (gemv_quantized.h: int8 or int4 weights with int8 activations).
bool int8_dot_supported();

// Asks Linux for the AMX tile state (idempotent, one syscall). True when tiles may be used.
// The AMX GEMM calls it before touching tiles, so a Context built with kAmx by hand is safe.
bool enable_amx();

// True on an AMD CPU (cpuid vendor "AuthenticAMD"), for tuning defaults measured per vendor.
bool amd_cpu();

// Every level this machine can run, lowest first (always starts with kScalar). For tests.
std::vector<Isa> runnable_isas();

// A human-readable list of the relevant CPU features ("avx2 fma f16c avx512f ... amx-bf16").
std::string cpu_feature_summary();

}  // namespace shardlm::cpu
