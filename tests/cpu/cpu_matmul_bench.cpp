// cpu-matmul-bench: times one cpu::matmul (the op the CPU backend runs for every linear layer)
// on bf16 (or int8, int4 or int4g128) weights at a chosen shape, thread count and ISA level,
// cycling through fresh weight copies so every call reads its weights from memory as a model's
// layers do (SHARDLM_BENCH_HOT=1: one copy, called 2000 times, for a model small enough to stay in
// cache). A benchmark, not a test: it checks nothing (kernels_test.cpp compares the kernels to
// kernels/ref).
//   build/bin/cpu-matmul-bench N_TOKENS N_IN N_OUT [THREADS] [ISA] [ACTIVATIONS f32|bf16]
//                              [WEIGHTS bf16|int8|int4|int4g128]
//   e.g. build/bin/cpu-matmul-bench 512 1024 6144 2 amx   (Qwen3-0.6B gate/up, 512-token prefill)
//        build/bin/cpu-matmul-bench 16 1024 6144 2 avx512 bf16   (16 decodes, bf16 activations)
//        build/bin/cpu-matmul-bench 1 1024 6144 2 avx512 f32 int8   (one decode, int8 weights)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "runtime/core/aligned_buffer.h"
#include "runtime/core/dtype.h"
#include "runtime/core/quant.h"

int main(int argc, char** argv) {
  using namespace shardlm;
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: cpu-matmul-bench N_TOKENS N_IN N_OUT [THREADS] [ISA] [f32|bf16]\n");
    return 2;
  }
  const int64_t n_tokens = std::atoll(argv[1]), n_in = std::atoll(argv[2]),
                n_out = std::atoll(argv[3]);
  const int threads = argc > 4 ? std::atoi(argv[4]) : 1;
  cpu::Isa cap = cpu::Isa::kAmx;
  if (argc > 5) {
    const auto parsed = cpu::parse_isa(argv[5]);
    if (!parsed) {
      std::fprintf(stderr, "cpu-matmul-bench: unknown ISA '%s' (scalar, avx2, avx512, amx)\n",
                   argv[5]);
      return 2;
    }
    cap = *parsed;
  }
  const std::string activations = argc > 6 ? argv[6] : "f32";
  if (activations != "f32" && activations != "bf16") {
    std::fprintf(stderr, "cpu-matmul-bench: activations '%s': expected f32 or bf16\n", argv[6]);
    return 2;
  }
  const std::string weights = argc > 7 ? argv[7] : "bf16";
  if (weights != "bf16" && weights != "int8" && weights != "int4" && weights != "int4g128") {
    std::fprintf(stderr, "cpu-matmul-bench: weights '%s': expected bf16, int8, int4 or int4g128\n",
                 argv[7]);
    return 2;
  }
  const DType wt = weights == "int8"       ? DType::kInt8
                   : weights == "int4"     ? DType::kInt4
                   : weights == "int4g128" ? DType::kInt4G128
                                           : DType::kBF16;
  if (is_quantized(wt) && n_in % quant_scale_inputs(wt) != 0) {
    std::fprintf(stderr, "cpu-matmul-bench: %s weights need N_IN a multiple of %d\n",
                 weights.c_str(), static_cast<int>(quant_scale_inputs(wt)));
    return 2;
  }
  if (n_tokens <= 0 || n_in <= 0 || n_out <= 0 || threads <= 0) {
    std::fprintf(stderr, "cpu-matmul-bench: sizes and THREADS must be positive\n");
    return 2;
  }
  ThreadPool pool(threads);
  cpu::Workspace ws;
  cpu::Context ctx{pool, cpu::detect_isa(cap), ws};
  ctx.bf16_activations = activations == "bf16";

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(static_cast<size_t>(n_tokens * n_in)),
      y(static_cast<size_t>(n_tokens * n_out));
  for (float& v : x) v = u(rng);
  // Enough copies to exceed the last-level cache (at least 1 GiB of weights in all).
  const size_t per = static_cast<size_t>(n_out) * row_bytes(wt, n_in);  // bytes of one copy
  // SHARDLM_BENCH_HOT=1: one copy, so the weights stay in cache (a model that fits the cache).
  const bool hot = std::getenv("SHARDLM_BENCH_HOT") != nullptr;
  const size_t copies = hot ? 1 : std::max<size_t>(2, (size_t{1} << 30) / per + 1);
  // Aligned as a pack's tensors are (a 16-byte offset, what a std::vector gives, splits every
  // 64-byte load of a row across two cache lines).
  AlignedBuffer w_buf(per * copies);
  auto* w = w_buf.as<uint8_t>();
  if (wt == DType::kBF16) {
    for (size_t i = 0; i < per * copies / 2; ++i) {
      const uint16_t v = f32_to_bf16(u(rng));
      std::memcpy(w + 2 * i, &v, 2);
    }
  } else {
    std::vector<float> row(static_cast<size_t>(n_in));
    for (size_t r = 0; r < per * copies / row_bytes(wt, n_in); ++r) {
      for (float& v : row) v = u(rng);
      quantize_row(wt, row.data(), n_in, w + r * row_bytes(wt, n_in));
    }
  }

  std::vector<double> ms;
  for (size_t r = 0; r < std::max<size_t>(copies, hot ? 2000 : 20); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    cpu::matmul(ctx, x.data(), n_tokens, n_in, w + (r % copies) * per, wt, n_out, nullptr,
                y.data());
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  std::printf(
      "%lld x %lld -> %lld %s, %d threads, isa %s, %s activations: median %.3f ms (min %.3f) = "
      "%.0f "
      "GFLOP/s, %.1f GB/s of weights, over %zu calls\n",
      static_cast<long long>(n_tokens), static_cast<long long>(n_in), static_cast<long long>(n_out),
      weights.c_str(), threads, cpu::isa_name(ctx.isa), activations.c_str(), med, ms.front(),
      2.0 * static_cast<double>(n_tokens * n_in * n_out) / med / 1e6,
      static_cast<double>(per) / med / 1e6, ms.size());
  return 0;
}
