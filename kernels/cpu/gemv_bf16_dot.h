// The bf16-activation GEMV: activations already rounded to bf16 against bf16 weights, with
// VDPBF16PS (pairs of bf16 x bf16 products summed into f32 lanes). Compiled only where the
// compiler takes -mavx512bf16 (SHARDLM_CPU_BF16_DOT) and called only when
// bf16_dot_supported(). Decode-sized matmuls of MatmulActivations::kBf16; the exact f32 GEMV is
// in the kernel tables. Nothing here threads, allocates or throws. Internal to kernels/cpu.
#pragma once

#include <cstdint>

namespace shardlm::cpu {

// y[t * ldy + o] = sum_k x[t * n_in + k] * w[o * n_in + k] (+ bias[o]) for o in [o_begin, o_end)
// and t < n_tokens; products exact, sums in f32 (input and output denormals flushed to zero, as
// the instruction does). A row's result does not depend on n_tokens.
//   x [n_tokens, n_in] bf16, w [n_out, n_in] bf16, bias [n_out] f32 or null, y [n_tokens, ldy]
void gemv_bf16_dot(const uint16_t* x, int64_t n_tokens, int64_t n_in, const uint16_t* w,
                   int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy);

// out[i] = bf16(x[i]), round to nearest even (bit-identical to f32_to_bf16 for non-NaN values).
//   x [n] f32, out [n] bf16
void round_to_bf16_avx512(const float* x, int64_t n, uint16_t* out);

}  // namespace shardlm::cpu
