// Matmul loops for block-quantized weights (DType::kInt8 and kInt4; row layouts in
// runtime/core/dtype.h): the decode GEMVs, with AVX2, AVX-512 and VNNI versions picked at run time,
// and the panel packing that lets the f32 GEMM (matmul.cpp) run prefill on dequantized weights. In
// the f32-activation paths each weight is widened exactly (scale * q) and products are summed in
// f32, as for bf16 weights. Nothing here threads or allocates on the heap; matmul.cpp splits rows
// over the pool. Reference twins: kernels/ref matmul with a quantized dtype (dequantize, then the
// naive matmul) and ref::matmul_int8_activations.
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"
#include "runtime/core/dtype.h"

namespace shardlm::cpu {

// y[t * ldy + o] = sum_k x[t * n_in + k] * w(o, k) (+ bias[o]) for o in [o_begin, o_end),
// t < n_tokens. dtype is kInt8 or kInt4; n_in is a multiple of 32.
//   x [n_tokens, n_in], w [n_out rows of row_bytes(dtype, n_in)], bias [n_out] or null,
//   y [n_tokens, ldy]
void gemv_quantized(Isa isa, DType dtype, const float* x, int64_t n_tokens, int64_t n_in,
                    const uint8_t* w, int64_t o_begin, int64_t o_end, const float* bias, float* y,
                    int64_t ldy);

// out[k - k0] = w(row, k) for k in [k0, k0 + kc), multiples of 32: AVX-512 where isa has it.
//   row [row_bytes(dtype, n_in)], out [kc]
void dequantize_range(Isa isa, DType dtype, const uint8_t* row, int64_t n_in, int64_t k0,
                      int64_t kc, float* out);

struct KernelTable;
// The widest GEMM panel of any table (gemm_nr).
inline constexpr int64_t kMaxGemmNr = 32;

// The GEMM's weight panel from quantized rows, dequantized, in the layout of kt.gemm_pack_w:
// wp[k * kt.gemm_nr + j] = w(o + j, k0 + k) for j < n_rows (<= kt.gemm_nr <= kMaxGemmNr),
// k < kc (<= kGemmKc); rows n_rows.. are zero. k0 and kc are multiples of 32.
//   w [n_out rows of row_bytes(dtype, n_in)], wp [kc, kt.gemm_nr]
void gemm_pack_w_quantized(const KernelTable& kt, DType dtype, const uint8_t* w, int64_t n_in,
                           int64_t o, int64_t n_rows, int64_t k0, int64_t kc, float* wp);

// Quantized weights x int8 activations: y[t * ldy + o] = sum over blocks of scale_w * scale_x *
// sum_i q_w[i] * q_x[i] (+ bias[o]), the products and their sums within a block exact. xq holds
// the activations quantized row by row with quantize_row_int8.
//   xq [n_tokens rows of row_bytes(kInt8, n_in)], others as gemv_quantized
// quantize_row_int8 (runtime/core/quant.h) with SIMD where isa has it, byte for byte the same:
// the activations of the int8-activation GEMVs.   x [n] (n a multiple of 32), out [row_bytes(kInt8,
// n)]
void quantize_activations_int8(Isa isa, const float* x, int64_t n, uint8_t* out);

// The activations of the int8-activation GEMVs: one token's quantized row (quantize_row_int8's
// bytes q + 128 and f16 scales) rearranged into the weight rows' interleaved order (dtype.h: in a
// group of G blocks from byte 512 g, byte 4 G c + 4 j + i holds the signed byte q_x of input
// 32 j + 4 c + i of the group, c < 8; int8 rows hold their bytes the same way, int4 rows step c's
// inputs in the low (c even) or high (c odd) nibbles of their step c / 2); then the n_in / 32 block
// scales as f32; then per block the int32 sum of its q_x (the kernels cancel the weights' stored
// offset, 128 or 8, with it).   xq [row_bytes(kInt8, n_in)], xa [arranged_activation_row_bytes]
inline size_t arranged_activation_row_bytes(int64_t n_in) {
  return static_cast<size_t>(n_in + n_in / kQuantBlock * 8);
}
void arrange_activations(const uint8_t* xq, int64_t n_in, uint8_t* xa);

// One token's activations for an Int8ActivationGemv: quantized, then arranged (scratch holds the
// quantized row on the way).
//   x [n_in], scratch [row_bytes(kInt8, n_in)], out [arranged_activation_row_bytes(n_in)]
void prepare_int8_activations(Isa isa, const float* x, int64_t n_in, uint8_t* scratch,
                              uint8_t* out);

// The GEMV with int8 activations this ISA level runs (VNNI on AVX-512 VNNI machines, the AVX2
// kernel at the AVX2 level), or null where decode keeps f32 activations (scalar; AVX-512 without
// VNNI, whose f32 GEMV is used). xq: n_tokens rows of arranged_activation_row_bytes(n_in)
// (prepare_int8_activations).
using Int8ActivationGemv = void (*)(const uint8_t* xq, int64_t n_tokens, int64_t n_in,
                                    const uint8_t* w, DType dtype, int64_t o_begin, int64_t o_end,
                                    const float* bias, float* y, int64_t ldy);
Int8ActivationGemv int8_activation_gemv(Isa isa);

#if defined(SHARDLM_CPU_INT8_DOT)
void gemv_quantized_vnni(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                         DType dtype, int64_t o_begin, int64_t o_end, const float* bias, float* y,
                         int64_t ldy);
// What gemv_quantized_vnni runs for one token when n_in is a multiple of 512 (whole groups): 8
// rows streamed together, each prefetched 512 bytes ahead into L1 and 2048 into L2, with
// amd_tuning (the default on AMD CPUs), else 4 rows 4096 bytes ahead. The same bits either way,
// and the bits of that token among others in one call. Exposed so tests run both tunings on any
// machine.   xa [arranged_activation_row_bytes(n_in)], w [n_out rows], y [1, ldy]
void gemv_one_token_vnni(const uint8_t* xa, int64_t n_in, const uint8_t* w, DType dtype,
                         bool amd_tuning, int64_t o_begin, int64_t o_end, const float* bias,
                         float* y, int64_t ldy);
#endif

#if defined(SHARDLM_CPU_X86_TABLES)
// out[k - k0] = w(row, k) for k in [k0, k0 + kc), multiples of 32 (gemv_quantized_avx512.cpp).
//   row [row_bytes(dtype, n_in)], out [kc]
void dequantize_blocks_avx512(DType dtype, const uint8_t* row, int64_t n_in, int64_t k0, int64_t kc,
                              float* out);
// The AVX2 GEMV with int8 activations (contract of gemv_quantized_vnni) and the AVX2 block
// dequantizer (gemv_quantized_avx2.cpp).
void gemv_quantized_int8x_avx2(const uint8_t* xq, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                               DType dtype, int64_t o_begin, int64_t o_end, const float* bias,
                               float* y, int64_t ldy);
void dequantize_blocks_avx2(DType dtype, const uint8_t* row, int64_t n_in, int64_t k0, int64_t kc,
                            float* out);
void quantize_row_int8_avx2(const float* x, int64_t n, uint8_t* out);
void quantize_row_int8_avx512(const float* x, int64_t n, uint8_t* out);
// The AVX-512 GEMV (gemv_quantized_avx512.cpp); same contract as gemv_quantized.
void gemv_quantized_avx512(DType dtype, const float* x, int64_t n_tokens, int64_t n_in,
                           const uint8_t* w, int64_t o_begin, int64_t o_end, const float* bias,
                           float* y, int64_t ldy);
#endif

}  // namespace shardlm::cpu
