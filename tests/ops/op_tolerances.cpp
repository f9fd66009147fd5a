// The tolerance table of the op-test harness (see op_tolerances.h). The numbers are the ones
// the per-backend op tests used before this harness replaced them (tests/runtime/kernels_test
// for the CPU, tests/vulkan/ops_test and paged_ops_test, tests/cuda/cuda_ops_test and
// cuda_paged_ops_test); each row says why. Inputs are the harness's: uniform in [-1, 1] unless
// a case says otherwise (q of paged attention in [-2, 2], rms_norm x in [-3, 3], swiglu up to
// [-120, 120]).
#include "tests/ops/op_tolerances.h"

#include <algorithm>
#include <optional>
#include <string_view>

namespace shardlm::ops_test {

namespace {

struct Row {
  Op op;
  std::string_view backend;    // "*": any backend
  std::optional<DType> dtype;  // nullopt: any dtype
  int64_t min_tokens;          // the row applies from this many tokens on
  Tolerance tol;
};

constexpr auto kAny = std::nullopt;

// First match wins: within one op, specific rows come before general ones.
const Row kTable[] = {
    // ---- exact ops: copies, sums of two f32 values, comparisons ----
    {Op::kEmbed, "*", kAny, 0, {0, 0, 0, "a row copy; f16/bf16 widen exactly"}},
    {Op::kAdd, "*", kAny, 0, {0, 0, 0, "one f32 addition per element, as the ref"}},
    {Op::kCopyColumns, "*", kAny, 0, {0, 0, 0, "a copy"}},
    {Op::kMaxElement, "*", kAny, 0, {0, 0, 0, "a comparison: same index (first of ties)"}},
    {Op::kStoreKv, "*", kAny, 0, {0, 0, 0, "f32 -> dtype with dtype.h's rounding: same bits"}},

    // ---- matmul: error per accumulated product |x w| <= 1, times n_in ----
    {Op::kMatmul,
     "cpu",
     DType::kInt8,
     0,
     {0, 0, 4e-3f,
      "int8 activations in the VNNI / AVX2 GEMVs (half a step of max|x| / 127 per term), bf16 "
      "rounding in bf16 mode's GEMM (2^-8); kernels_test compares each with its exact twin"}},
    {Op::kMatmul, "cpu", DType::kInt4, 0, {0, 0, 4e-3f, "as int8"}},
    {Op::kMatmul, "cpu", DType::kInt4G128, 0, {0, 0, 4e-3f, "as int8"}},
    {Op::kMatmul,
     "cuda",
     DType::kBF16,
     9,
     {1e-6f, 0, 6e-6f,
      "cuBLAS GEMM (> cuda::kDecodeMaxTokens = 8 tokens): x = hi + lo in bf16, "
      "|x - hi - lo| <= 2^-18 |x|"}},
    {Op::kMatmul,
     "cuda",
     DType::kF16,
     9,
     {1e-6f, 0, 4e-7f, "cuBLAS GEMM: x = hi + lo in f16, 2^-24 |x| plus f16 subnormal steps"}},
    {Op::kMatmul,
     "cuda",
     kAny,
     0,
     {1e-6f, 0, 2e-7f, "GEMV and f32 GEMM (no TF32): f32 sums in another order than the ref"}},
    {Op::kMatmul,
     "*",
     kAny,
     0,
     {0, 0, 2e-7f,
      "weights widened exactly, f32 sums in another order than the ref's double (cpu: every "
      "ISA, the AMX 3-part split is exact; bf16 activations are compared with "
      "ref::matmul_bf16_activations, same products)"}},

    // ---- rms_norm (x in [-3, 3]) ----
    {Op::kRmsNorm,
     "cuda",
     kAny,
     0,
     {0, 2e-6f, 0, "warp / block reductions of the sum of squares, relative to max|out|"}},
    {Op::kRmsNorm, "vulkan", kAny, 0, {2e-6f, 0, 0, "subgroup or shared-memory reductions"}},
    {Op::kRmsNorm, "*", kAny, 0, {1e-6f, 0, 0, "f32 sum of squares, then one rsqrt"}},

    // ---- rope: cos/sin of the f32 angle, rounded to f32 on both sides ----
    {Op::kRope,
     "vulkan",
     kAny,
     0,
     {2e-6f, 0, 0, "rope.comp's own cos/sin (~1 ulp after range reduction), not the ref's"}},
    {Op::kRope, "*", kAny, 0, {1e-6f, 0, 0, "cos/sin rounded to f32; one rotation"}},

    // ---- attention: outputs are convex combinations of V values in [-1, 1] ----
    {Op::kAttention, "cuda", kAny, 0, {2e-5f, 0, 0, "fast expf, online softmax per key split"}},
    {Op::kAttention,
     "*",
     kAny,
     0,
     {2e-6f, 0, 0, "f32 dot products and exp, online softmax over key blocks / splits"}},
    {Op::kPagedAttention,
     "cuda",
     kAny,
     0,
     {2e-5f, 0, 0, "as its contiguous attention: fast expf, split-K merges"}},
    {Op::kPagedAttention,
     "vulkan",
     kAny,
     0,
     {2e-6f, 0, 0, "as its contiguous attention: both read the same widened K/V"}},
    {Op::kPagedAttention,
     "cpu/bf16act",
     kAny,
     0,
     {1.0f / 256, 0, 0,
      "vs ref::paged_attention_bf16_activations: both round the same queries; each softmax "
      "numerator is rounded against a running max (chunks, split-K) here and the global max "
      "there, each within 2^-9 of exact, so |diff| <= 2^-8 max|v|; paged_kernels_test checks "
      "that one-chunk rows agree far closer than the exact ref"}},
    {Op::kPagedAttention,
     "*",
     kAny,
     0,
     {1e-6f, 0, 0,
      "both sides widen the same stored K/V exactly: f32 accumulation and the 2-ulp exp only"}},

    // ---- swiglu: silu(g) * u reaches max|out| ~ magnitude^2 ----
    {Op::kSwiglu, "cuda", kAny, 0, {0, 1e-6f, 0, "__expf, relative to max|out|"}},
    {Op::kSwiglu,
     "vulkan",
     kAny,
     0,
     {1e-5f, 2.8e-7f, 0, "GLSL exp; 1e-5 at magnitude 6 (max|out| ~ 36), scaled beyond"}},
    {Op::kSwiglu,
     "*",
     kAny,
     0,
     {2e-6f, 1.25e-7f, 0, "vectorized exp: 2e-6 x max(1, magnitude^2 / 16)"}},
};

}  // namespace

float Tolerance::bound(float max_abs_want, int64_t n_terms) const {
  return std::max(abs, rel * max_abs_want) + per_term * static_cast<float>(n_terms);
}

Tolerance tolerance(const std::string& backend, Op op, DType dtype, int64_t n_tokens,
                    bool bf16_activations) {
  const std::string bf16_rows = backend + "/bf16act";
  for (const Row& r : kTable) {
    const bool ours =
        r.backend == backend || r.backend == "*" || (bf16_activations && r.backend == bf16_rows);
    if (r.op != op || !ours) continue;
    if (r.dtype && *r.dtype != dtype) continue;
    if (n_tokens < r.min_tokens) continue;
    return r.tol;
  }
  return {};  // unreachable: every op has a "*" row
}

}  // namespace shardlm::ops_test
