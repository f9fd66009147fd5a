// read_vs_triad: a standalone check of how much a read-only loop can pull from memory on this
// machine, against the STREAM triad, at 1 and 2 threads and several footprints (anonymous
// memory, 2 MiB pages requested). It backs the roofline discussion in docs/benchmarks.md: on a
// core with a bounded number of read misses in flight, a read-only kernel (decode's GEMV) tops
// out below the triad, whose non-temporal stores drain outside that budget.
// Not part of the build or the tests; needs AVX-512F. Build and run:
//   g++ -O2 -mavx512f -o /tmp/read_vs_triad tools/bandwidth/read_vs_triad.cpp -lpthread
//   /tmp/read_vs_triad
#include <immintrin.h>
#include <sys/mman.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
using clk = std::chrono::steady_clock;
__attribute__((target("avx512f"))) float rd(const float* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    _mm_prefetch((const char*)(p + i) + 1024, _MM_HINT_T0);
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
  }
  float f[16];
  _mm512_storeu_ps(f, _mm512_add_ps(a0, a1));
  return f[0];
}
__attribute__((target("avx512f"))) void triad(float* a, const float* b, const float* c, size_t n) {
  const __m512 vs = _mm512_set1_ps(3.f);
  for (size_t i = 0; i + 16 <= n; i += 16)
    _mm512_stream_ps(a + i, _mm512_fmadd_ps(vs, _mm512_load_ps(c + i), _mm512_load_ps(b + i)));
  _mm_sfence();
}
template <class F>
double team(int T, F f) {
  std::atomic<int> go{0};
  std::vector<double> secs(T);
  std::vector<std::thread> th;
  for (int t = 0; t < T; ++t)
    th.emplace_back([&, t] {
      while (!go.load()) {
      }
      auto a = clk::now();
      f(t);
      secs[t] = std::chrono::duration<double>(clk::now() - a).count();
    });
  go = 1;
  for (auto& x : th) x.join();
  return *std::max_element(secs.begin(), secs.end());
}
int main() {
  const int T = 2;
  for (size_t mb : {64, 256, 1200, 6000}) {
    size_t bytes = mb << 20;
    size_t n = bytes / 4 / 3 / 64 * 64;
    float* buf =
        (float*)mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise(buf, bytes, MADV_HUGEPAGE);
    for (size_t i = 0; i < 3 * n; ++i) buf[i] = 1.0f;
    float *a = buf, *b = buf + n, *c = buf + 2 * n;
    std::vector<float> sink(T);
    double br = 0, bt = 0;
    int reps = mb > 2000 ? 3 : 10;
    for (int r = 0; r < reps; ++r) {
      double s = team(T, [&](int t) { sink[t] = rd(buf + 3 * n / T * t, 3 * n / T); });
      br = std::max(br, 3 * n * 4 / s / 1e9);
      s = team(T, [&](int t) { triad(a + n / T * t, b + n / T * t, c + n / T * t, n / T); });
      bt = std::max(bt, 3 * n * 4 / s / 1e9);
    }
    double b1 = 0;
    for (int r = 0; r < reps; ++r) {
      double s = team(1, [&](int) { sink[0] = rd(buf, 3 * n); });
      b1 = std::max(b1, 3 * n * 4 / s / 1e9);
    }
    printf("%5zu MB: read 2T %6.2f  read 1T %6.2f  triad 2T %6.2f GB/s\n", mb, br, b1, bt);
    munmap(buf, bytes);
  }
}
