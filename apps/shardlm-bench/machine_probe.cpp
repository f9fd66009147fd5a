// Bandwidth and peak-FLOP probes. The x86 loops carry target attributes (this file is compiled
// for the baseline ISA) and run only after kernels/cpu/isa.h says the CPU and OS support them.
#include "apps/shardlm-bench/machine_probe.h"

#include <sys/mman.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "kernels/cpu/isa.h"
#include "runtime/core/status.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SHARDLM_BENCH_X86 1
#endif

namespace shardlm::bench {

namespace {

using Clock = std::chrono::steady_clock;

// Runs fn(thread) on n_threads threads released together; returns the wall time from the
// first thread's start to the last thread's end (each thread stamps its own start and end, so
// a descheduled coordinator cannot shorten the interval).
double team_seconds(int n_threads, const std::function<void(int)>& fn) {
  std::barrier start(n_threads);
  std::vector<Clock::time_point> begin(static_cast<size_t>(n_threads)),
      end(static_cast<size_t>(n_threads));
  std::vector<std::thread> team;
  for (int t = 0; t < n_threads; ++t) {
    team.emplace_back([&, t] {
      start.arrive_and_wait();
      begin[static_cast<size_t>(t)] = Clock::now();
      fn(t);
      end[static_cast<size_t>(t)] = Clock::now();
    });
  }
  for (auto& th : team) th.join();
  return std::chrono::duration<double>(*std::max_element(end.begin(), end.end()) -
                                       *std::min_element(begin.begin(), begin.end()))
      .count();
}

// Page-aligned anonymous memory with transparent huge pages requested, first touched by the
// thread that will use each slice.
class ProbeBuffer {
 public:
  explicit ProbeBuffer(size_t bytes) : bytes_(bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      fail(StatusCode::kOom, "bandwidth probe: cannot map " + std::to_string(bytes >> 20) + " MiB");
    madvise(p, bytes, MADV_HUGEPAGE);
    data_ = static_cast<float*>(p);
  }
  ~ProbeBuffer() { munmap(data_, bytes_); }
  float* data() const { return data_; }

 private:
  size_t bytes_;
  float* data_;
};

float read_generic(const float* p, size_t n) {
  float acc[16] = {};
  for (size_t i = 0; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) acc[l] += p[i + l];
  }
  float s = 0;
  for (float a : acc) s += a;
  return s;
}

void triad_generic(float* a, const float* b, const float* c, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

float fma_generic(int64_t iters) {
  float a[16];
  for (int l = 0; l < 16; ++l) a[l] = static_cast<float>(l) * 1e-9f;
  for (int64_t i = 0; i < iters; ++i) {
    for (int l = 0; l < 16; ++l) a[l] = a[l] * 1.0000001f + 1e-9f;
  }
  float s = 0;
  for (float x : a) s += x;
  return s;
}

#ifdef SHARDLM_BENCH_X86
// Horizontal sum through memory (GCC 12's _mm512_reduce_add_ps trips -Wuninitialized).
__attribute__((target("avx512f"))) float reduce512(__m512 v) {
  alignas(64) float f[16];
  _mm512_store_ps(f, v);
  float s = 0;
  for (float x : f) s += x;
  return s;
}

__attribute__((target("avx512f"))) float read_avx512(const float* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return reduce512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// `S` interleaved sequential streams over [p, p + n): more memory requests in flight per core.
// With kPrefetch, every stream also prefetches 1 KiB ahead (what the GEMV does).
template <int S, bool kPrefetch>
__attribute__((target("avx512f"))) float read_streams_avx512(const float* p, size_t n) {
  const size_t per = n / S / 64 * 64;
  __m512 acc[S];
  for (int s = 0; s < S; ++s) acc[s] = _mm512_setzero_ps();
  for (size_t i = 0; i < per; i += 64) {
    for (int s = 0; s < S; ++s) {
      const float* q = p + s * per + i;
      if (kPrefetch) {
        for (int l = 0; l < 4; ++l) {
          _mm_prefetch(reinterpret_cast<const char*>(q + 16 * l) + 1024, _MM_HINT_T0);
        }
      }
      acc[s] = _mm512_add_ps(
          acc[s], _mm512_add_ps(_mm512_add_ps(_mm512_load_ps(q), _mm512_load_ps(q + 16)),
                                _mm512_add_ps(_mm512_load_ps(q + 32), _mm512_load_ps(q + 48))));
    }
  }
  __m512 sum = acc[0];
  for (int s = 1; s < S; ++s) sum = _mm512_add_ps(sum, acc[s]);
  return reduce512(sum) + read_avx512(p + S * per, n - S * per);
}

__attribute__((target("avx512f"))) void triad_avx512(float* a, const float* b, const float* c,
                                                     float s, size_t n) {
  const __m512 vs = _mm512_set1_ps(s);
  for (size_t i = 0; i + 16 <= n; i += 16) {
    _mm512_stream_ps(a + i, _mm512_fmadd_ps(vs, _mm512_load_ps(c + i), _mm512_load_ps(b + i)));
  }
  _mm_sfence();
}

// Ten independent FMA chains per thread: enough to cover the FMA latency on two ports.
#define SHARDLM_FMA10(SET1, FMADD, REDUCE, T)                                                 \
  T a0 = SET1(0), a1 = SET1(1e-9f), a2 = SET1(2e-9f), a3 = SET1(3e-9f), a4 = SET1(4e-9f),     \
    a5 = SET1(5e-9f), a6 = SET1(6e-9f), a7 = SET1(7e-9f), a8 = SET1(8e-9f), a9 = SET1(9e-9f); \
  const T b = SET1(1.0000001f), c = SET1(1e-9f);                                              \
  for (int64_t i = 0; i < iters; ++i) {                                                       \
    a0 = FMADD(a0, b, c);                                                                     \
    a1 = FMADD(a1, b, c);                                                                     \
    a2 = FMADD(a2, b, c);                                                                     \
    a3 = FMADD(a3, b, c);                                                                     \
    a4 = FMADD(a4, b, c);                                                                     \
    a5 = FMADD(a5, b, c);                                                                     \
    a6 = FMADD(a6, b, c);                                                                     \
    a7 = FMADD(a7, b, c);                                                                     \
    a8 = FMADD(a8, b, c);                                                                     \
    a9 = FMADD(a9, b, c);                                                                     \
  }                                                                                           \
  return REDUCE(a0) + REDUCE(a1) + REDUCE(a2) + REDUCE(a3) + REDUCE(a4) + REDUCE(a5) +        \
         REDUCE(a6) + REDUCE(a7) + REDUCE(a8) + REDUCE(a9);

__attribute__((target("avx512f"))) float fma_avx512(int64_t iters) {
  SHARDLM_FMA10(_mm512_set1_ps, _mm512_fmadd_ps, reduce512, __m512)
}

__attribute__((target("avx2,fma"))) float reduce256(__m256 v) {
  alignas(32) float f[8];
  _mm256_store_ps(f, v);
  return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}

__attribute__((target("avx2,fma"))) float fma_avx2(int64_t iters) {
  SHARDLM_FMA10(_mm256_set1_ps, _mm256_fmadd_ps, reduce256, __m256)
}

__attribute__((target("avx512f,avx512bf16"))) float dpbf16_avx512(int64_t iters) {
  __m512 a[10];
  for (auto& v : a) v = _mm512_setzero_ps();
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80);  // bf16 1.0
  for (int64_t i = 0; i < iters; ++i) {
    for (auto& v : a) v = _mm512_dpbf16_ps(v, x, x);
  }
  float s = 0;
  for (auto& v : a) s += reduce512(v);
  return s;
}

struct TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Four 16x16 f32 accumulators fed by two A and two B tiles: the register blocking of a GEMM.
__attribute__((target("amx-tile,amx-bf16"))) float amx_bf16(int64_t iters) {
  TileConfig cfg;
  for (int i = 0; i < 8; ++i) {
    cfg.colsb[i] = 64;
    cfg.rows[i] = 16;
  }
  _tile_loadconfig(&cfg);
  alignas(64) uint16_t ab[16 * 32];
  for (auto& v : ab) v = 0x3c00;  // bf16 2^-7: sums stay finite
  alignas(64) float c[16 * 16];
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, ab, 64);
  _tile_loadd(5, ab, 64);
  _tile_loadd(6, ab, 64);
  _tile_loadd(7, ab, 64);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  _tile_release();
  return c[0];
}
#endif  // SHARDLM_BENCH_X86

template <class Fn>
double best_of(int reps, Fn fn) {
  double best = 0;
  for (int r = 0; r < std::max(1, reps); ++r) best = std::max(best, fn());
  return best;
}

}  // namespace

double Bandwidth::best_gbs() const {
  return std::max({read_gbs, copy_gbs, triad_gbs});
}

std::string Bandwidth::best_kind() const {
  const double b = best_gbs();
  return b == read_gbs ? "read" : b == copy_gbs ? "copy" : "triad";
}

Bandwidth measure_bandwidth(int n_threads, size_t total_mib, int reps) {
  n_threads = std::max(1, n_threads);
  const size_t align = 64 * static_cast<size_t>(n_threads);  // floats; each slice 256-B aligned
  const size_t n_total = (total_mib << 20) / sizeof(float) / align * align;
  const size_t n3 = n_total / 3 / align * align;  // triad arrays
  [[maybe_unused]] const bool avx512 = cpu::detect_isa() >= cpu::Isa::kAvx512;
  Bandwidth bw;
  {
    ProbeBuffer buf(n_total * sizeof(float));
    float* p = buf.data();
    const size_t slice = n_total / static_cast<size_t>(n_threads);
    std::vector<float> sink(static_cast<size_t>(n_threads));
    team_seconds(n_threads, [&](int t) {
      float* s = p + static_cast<size_t>(t) * slice;
      for (size_t i = 0; i < slice; ++i) s[i] = static_cast<float>(i & 1023) * 1e-3f;
    });
    bw.read_gbs = best_of(reps, [&] {
      const double s = team_seconds(n_threads, [&](int t) {
        const float* s = p + static_cast<size_t>(t) * slice;
#ifdef SHARDLM_BENCH_X86
        sink[static_cast<size_t>(t)] = avx512 ? read_avx512(s, slice) : read_generic(s, slice);
#else
        sink[static_cast<size_t>(t)] = read_generic(s, slice);
#endif
      });
      return static_cast<double>(n_total * sizeof(float)) / s / 1e9;
    });
    // One core alone: how many reads a core keeps in flight bounds this, not the memory.
    bw.read_one_thread_gbs = best_of(reps, [&] {
      const double s = team_seconds(1, [&](int) {
#ifdef SHARDLM_BENCH_X86
        sink[0] = avx512 ? read_avx512(p, n_total) : read_generic(p, n_total);
#else
        sink[0] = read_generic(p, n_total);
#endif
      });
      return static_cast<double>(n_total * sizeof(float)) / s / 1e9;
    });
    // Copy: the first half of the buffer into the second half.
    const size_t half = n_total / 2 / static_cast<size_t>(n_threads);
    bw.copy_gbs = best_of(reps, [&] {
      const double s = team_seconds(n_threads, [&](int t) {
        std::memcpy(p + n_total / 2 + static_cast<size_t>(t) * half,
                    p + static_cast<size_t>(t) * half, half * sizeof(float));
      });
      return 2.0 * static_cast<double>(half * static_cast<size_t>(n_threads) * sizeof(float)) / s /
             1e9;
    });
  }
  {
    ProbeBuffer buf(3 * n3 * sizeof(float));
    float *a = buf.data(), *b = a + n3, *c = b + n3;
    const size_t slice = n3 / static_cast<size_t>(n_threads);
    team_seconds(n_threads, [&](int t) {
      const size_t o = static_cast<size_t>(t) * slice;
      for (size_t i = 0; i < slice; ++i) a[o + i] = b[o + i] = c[o + i] = 1.0f;
    });
    bw.triad_gbs = best_of(reps, [&] {
      const double s = team_seconds(n_threads, [&](int t) {
        const size_t o = static_cast<size_t>(t) * slice;
#ifdef SHARDLM_BENCH_X86
        if (avx512) return triad_avx512(a + o, b + o, c + o, 3.0f, slice);
#endif
        triad_generic(a + o, b + o, c + o, 3.0f, slice);
      });
      return 3.0 * static_cast<double>(n3 * sizeof(float)) / s / 1e9;
    });
  }
  return bw;
}

double read_regions_gbs(const std::vector<Region>& regions, int n_threads, int passes) {
  n_threads = std::max(1, n_threads);
  size_t total = 0;
  for (const Region& r : regions) total += r.bytes;
  if (total == 0) return 0;
  [[maybe_unused]] const bool avx512 = cpu::detect_isa() >= cpu::Isa::kAvx512;
  std::vector<float> sink(static_cast<size_t>(n_threads));
  // Like a GEMV: every region is split into equal slices, one per thread, and each slice is
  // read as `streams` interleaved sequential streams.
  auto read_slices = [&](int t, int streams, bool prefetch) {
    float acc = 0;
    for (const Region& r : regions) {
      const uintptr_t base = reinterpret_cast<uintptr_t>(r.data);
      const size_t lo = r.bytes * static_cast<size_t>(t) / static_cast<size_t>(n_threads);
      const size_t hi = r.bytes * static_cast<size_t>(t + 1) / static_cast<size_t>(n_threads);
      const uintptr_t a = (base + lo + 63) & ~uintptr_t{63};            // tensors are 4 KiB aligned
      const size_t n = base + hi > a ? (base + hi - a) / 256 * 64 : 0;  // floats
      const float* p = reinterpret_cast<const float*>(a);
#ifdef SHARDLM_BENCH_X86
      if (avx512) {
        if (prefetch) {
          acc += streams == 8   ? read_streams_avx512<8, true>(p, n)
                 : streams == 4 ? read_streams_avx512<4, true>(p, n)
                                : read_streams_avx512<1, true>(p, n);
        } else {
          acc += streams == 8   ? read_streams_avx512<8, false>(p, n)
                 : streams == 4 ? read_streams_avx512<4, false>(p, n)
                                : read_streams_avx512<1, false>(p, n);
        }
        continue;
      }
#endif
      acc += read_generic(p, n);
    }
    sink[static_cast<size_t>(t)] = acc;
  };
  double best = 0;
  for (bool prefetch : {false, true}) {
    for (int streams : {1, 4, 8}) {
      best = std::max(
          best, best_of(passes, [&] {
            return static_cast<double>(total) /
                   team_seconds(n_threads, [&](int t) { read_slices(t, streams, prefetch); }) / 1e9;
          }));
    }
  }
  return best;
}

struct TriadProbe::Impl {
  Impl(size_t bytes, int threads) : n_threads(std::max(1, threads)) {
    const size_t align = 64 * static_cast<size_t>(n_threads);
    n = bytes / 3 / sizeof(float) / align * align;
    buf = std::make_unique<ProbeBuffer>(std::max<size_t>(3 * n * sizeof(float), 4096));
    const size_t slice = n / static_cast<size_t>(n_threads);
    float* a = buf->data();
    team_seconds(n_threads, [&](int t) {
      const size_t o = static_cast<size_t>(t) * slice;
      for (size_t i = 0; i < slice; ++i) a[o + i] = a[n + o + i] = a[2 * n + o + i] = 1.0f;
    });
  }
  int n_threads;
  size_t n = 0;  // floats per array
  std::unique_ptr<ProbeBuffer> buf;
};

TriadProbe::TriadProbe(size_t total_bytes, int n_threads)
    : impl_(std::make_unique<Impl>(total_bytes, n_threads)) {}
TriadProbe::~TriadProbe() = default;

double TriadProbe::run_gbs(int passes) {
  Impl& m = *impl_;
  if (m.n == 0) return 0;
  [[maybe_unused]] const bool avx512 = cpu::detect_isa() >= cpu::Isa::kAvx512;
  float *a = m.buf->data(), *b = a + m.n, *c = b + m.n;
  const size_t slice = m.n / static_cast<size_t>(m.n_threads);
  return best_of(passes, [&] {
    const double s = team_seconds(m.n_threads, [&](int t) {
      const size_t o = static_cast<size_t>(t) * slice;
#ifdef SHARDLM_BENCH_X86
      if (avx512) return triad_avx512(a + o, b + o, c + o, 3.0f, slice);
#endif
      triad_generic(a + o, b + o, c + o, 3.0f, slice);
    });
    return 3.0 * static_cast<double>(m.n * sizeof(float)) / s / 1e9;
  });
}

PeakFlops measure_peak_flops(int n_threads, int reps) {
  n_threads = std::max(1, n_threads);
  PeakFlops pk;
  std::vector<float> sink(static_cast<size_t>(n_threads));
  auto rate = [&](int64_t iters, double flops_per_iter, float (*loop)(int64_t)) {
    return best_of(reps, [&] {
      const double s =
          team_seconds(n_threads, [&](int t) { sink[static_cast<size_t>(t)] = loop(iters); });
      return flops_per_iter * static_cast<double>(iters) * n_threads / s / 1e9;
    });
  };
  const cpu::Isa isa = cpu::detect_isa();
  pk.f32_method = "scalar loop (16 independent chains, auto-vectorized)";
  float (*f32_loop)(int64_t) = fma_generic;
  double f32_per_iter = 16 * 2;
#ifdef SHARDLM_BENCH_X86
  if (isa >= cpu::Isa::kAvx512) {
    f32_loop = fma_avx512, f32_per_iter = 10 * 16 * 2, pk.f32_method = "AVX-512 FMA, 10 chains";
  } else if (isa >= cpu::Isa::kAvx2) {
    f32_loop = fma_avx2, f32_per_iter = 10 * 8 * 2, pk.f32_method = "AVX2 FMA, 10 chains";
  }
#endif
  pk.f32_gflops = rate(20'000'000, f32_per_iter, f32_loop);
#ifdef SHARDLM_BENCH_X86
  if (isa >= cpu::Isa::kAmx) {
    pk.bf16_method = "AMX TDPBF16PS, 4 accumulator tiles";
    pk.bf16_gflops = rate(1'000'000, 4.0 * 16 * 16 * 32 * 2, amx_bf16);
  } else if (isa >= cpu::Isa::kAvx512 && __builtin_cpu_supports("avx512bf16")) {
    pk.bf16_method = "AVX-512 BF16 VDPBF16PS, 10 chains";
    pk.bf16_gflops = rate(20'000'000, 10 * 32 * 2, dpbf16_avx512);
  }
#endif
  if (pk.bf16_method.empty()) pk.bf16_method = "none (no AMX or AVX-512 BF16)";
  return pk;
}

}  // namespace shardlm::bench
