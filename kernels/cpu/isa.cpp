// Runtime ISA detection: cpuid for what the CPU has, xgetbv for what the OS saves on context
// switches (AVX/AVX-512/AMX register state), arch_prctl for Linux's AMX permission.
#include "kernels/cpu/isa.h"

#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#define SHARDLM_X86 1
#endif

namespace shardlm::cpu {

namespace {

struct Features {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512_bf16 = false, avx512_fp16 = false, avx512_vnni = false;
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
  bool os_avx = false, os_avx512 = false, os_amx = false;
};

#ifdef SHARDLM_X86
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

Features read_features() {
  Features f;
#ifdef SHARDLM_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  if (osxsave) {
    const uint64_t xcr0 = read_xcr0();
    f.os_avx = (xcr0 & 0x6) == 0x6;                   // SSE + AVX state
    f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
    f.os_amx = (xcr0 & 0x60000) == 0x60000;           // XTILECFG + XTILEDATA
  }
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b >> 5) & 1;
    f.avx512f = (b >> 16) & 1;
    f.avx512dq = (b >> 17) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512_vnni = (c >> 11) & 1;
    f.avx512_fp16 = (d >> 23) & 1;
    f.amx_bf16 = (d >> 22) & 1;
    f.amx_tile = (d >> 24) & 1;
    f.amx_int8 = (d >> 25) & 1;
    __cpuid_count(7, 1, a, b, c, d);
    f.avx512_bf16 = (a >> 5) & 1;
  }
#endif
  return f;
}

// Linux keeps AMX tile data off until a process asks (kernel >= 5.16). Idempotent.
bool request_amx_permission() {
#if defined(SHARDLM_X86) && defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

bool has_avx2(const Features& f) {
  return f.os_avx && f.avx2 && f.fma && f.f16c;
}
bool has_avx512(const Features& f) {
  return has_avx2(f) && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
}
bool has_amx(const Features& f) {
  return has_avx512(f) && f.os_amx && f.amx_tile && f.amx_bf16;
}

}  // namespace

bool enable_amx() {
  const Features f = read_features();
  return has_amx(f) && request_amx_permission();
}

bool bf16_dot_supported() {
#if defined(SHARDLM_CPU_BF16_DOT)
  const Features f = read_features();
  return has_avx512(f) && f.avx512_bf16;
#else
  return false;
#endif
}

bool int8_dot_supported() {
#if defined(SHARDLM_CPU_INT8_DOT)
  const Features f = read_features();
  return has_avx512(f) && f.avx512_vnni;
#else
  return false;
#endif
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAmx:
      return "amx";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (name == isa_name(i)) return i;
  }
  return std::nullopt;
}

Isa detect_isa(Isa cap) {
  const Features f = read_features();
  Isa best = Isa::kScalar;
  if (has_avx2(f)) best = Isa::kAvx2;
  if (has_avx512(f)) best = Isa::kAvx512;
#if defined(SHARDLM_CPU_AMX)  // the tile GEMM is compiled in
  if (has_amx(f) && cap >= Isa::kAmx && request_amx_permission()) best = Isa::kAmx;
#endif
#if !defined(SHARDLM_CPU_X86_TABLES)  // only the portable table is compiled in
  best = Isa::kScalar;
#endif
  return best < cap ? best : cap;
}

bool amd_cpu() {
#ifdef SHARDLM_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  // The vendor string is ebx, edx, ecx: "Auth" "enti" "cAMD".
  return b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;
#else
  return false;
#endif
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  const Isa best = detect_isa();
  for (int i = 0; i <= static_cast<int>(best); ++i) out.push_back(static_cast<Isa>(i));
  return out;
}

std::string cpu_feature_summary() {
  const Features f = read_features();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512dq, "avx512dq");
  add(f.avx512vl, "avx512vl");
  add(f.avx512_vnni, "avx512-vnni");
  add(f.avx512_bf16, "avx512-bf16");
  add(f.avx512_fp16, "avx512-fp16");
  add(f.amx_tile, "amx-tile");
  add(f.amx_bf16, "amx-bf16");
  add(f.amx_int8, "amx-int8");
  if (s.empty()) s = "none";
  return s;
}

}  // namespace shardlm::cpu
