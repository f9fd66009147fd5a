// Matmul loops for int8 block-quantized weights (DType::kInt8; row layout in runtime/core/dtype.h):
// the decode GEMV, with an AVX-512 version picked at run time, and the panel packing that lets
// the f32 GEMM (matmul.cpp) run prefill on dequantized weights. Activations stay f32: each weight
// is widened exactly (scale * q) and products are summed in f32, as for bf16 weights. Nothing
// here threads or allocates on the heap; matmul.cpp splits rows over the pool.
// Reference twin: kernels/ref matmul with DType::kInt8 (dequantize, then the naive matmul).
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"

namespace shardlm::cpu {

// y[t * ldy + o] = sum_k x[t * n_in + k] * w(o, k) (+ bias[o]) for o in [o_begin, o_end),
// t < n_tokens. n_in is a multiple of 32.
//   x [n_tokens, n_in], w [n_out rows of row_bytes(kInt8, n_in)], bias [n_out] or null,
//   y [n_tokens, ldy]
void gemv_int8(Isa isa, const float* x, int64_t n_tokens, int64_t n_in, const uint8_t* w,
               int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy);

struct KernelTable;
// The widest GEMM panel of any table (gemm_nr).
inline constexpr int64_t kMaxGemmNr = 32;

// The GEMM's weight panel from int8 rows, dequantized, in the layout of kt.gemm_pack_w:
// wp[k * kt.gemm_nr + j] = w(o + j, k0 + k) for j < n_rows (<= kt.gemm_nr <= kMaxGemmNr),
// k < kc (<= kGemmKc); rows n_rows.. are zero. k0 and kc are multiples of 32.
//   w [n_out rows of row_bytes(kInt8, n_in)], wp [kc, kt.gemm_nr]
void gemm_pack_w_int8(const KernelTable& kt, const uint8_t* w, int64_t n_in, int64_t o,
                      int64_t n_rows, int64_t k0, int64_t kc, float* wp);

// int8 x int8: y[t * ldy + o] = sum over blocks of scale_w * scale_x * sum_i q_w[i] * q_x[i]
// (+ bias[o]), the products and their sums within a block exact. xq holds the activations
// quantized row by row with quantize_row_int8 (the weights' layout).
//   xq [n_tokens rows of row_bytes(kInt8, n_in)], others as gemv_int8
#if defined(SHARDLM_CPU_INT8_DOT)
void gemv_int8_vnni(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                    int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy);
#endif

#if defined(SHARDLM_CPU_X86_TABLES)
// out[k - k0] = w(row, k) for k in [k0, k0 + kc), multiples of 32 (gemv_int8_avx512.cpp).
//   row [row_bytes(kInt8, n_in)], out [kc]
void dequantize_blocks_avx512(const uint8_t* row, int64_t n_in, int64_t k0, int64_t kc, float* out);
// The AVX-512 GEMV (gemv_int8_avx512.cpp); same contract as gemv_int8.
void gemv_int8_avx512(const float* x, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                      int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy);
#endif

}  // namespace shardlm::cpu
