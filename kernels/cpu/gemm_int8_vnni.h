// The int8 GEMM for quantized weights (prefill-sized matmuls of int8 / int4 packs in the bf16
// activation mode, on AVX-512 VNNI machines): activations quantized to int8 per block of 32 (as
// the VNNI GEMV does), weights' stored values (int8 q + 128, int4 q + 8) as VPDPBUSD's unsigned
// operand, exact int32 sums per block, then scaled by weight scale x activation scale into f32.
// A 6-token x 32-output register tile over blocks of 32 inputs. Compiled only where the compiler
// takes -mavx512vnni (SHARDLM_CPU_INT8_DOT) and called only when int8_dot_supported(); the
// pieces are the packing step and the tile, threaded by matmul.cpp. Nothing here threads,
// allocates or throws. Internal to kernels/cpu. Reference twin: ref::matmul_int8_activations.
#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"

namespace shardlm::cpu {

inline constexpr int64_t kInt8GemmMr = 6;    // tokens per register tile
inline constexpr int64_t kInt8GemmNr = 32;   // outputs per register tile (2 vectors)
inline constexpr int64_t kInt8GemmKc = 512;  // inputs per packed weight panel (16 KiB)

// Packs weight rows [o, o + n_rows) (n_rows <= kInt8GemmNr), inputs [k0, k0 + kc) (multiples of
// 32) of a quantized matrix: wp[(g * kInt8GemmNr + j) * 4 + i] = the stored value of row o + j,
// input k0 + 4 g + i; ws[b * kInt8GemmNr + j] = the f32 scale of row o + j, block k0 / 32 + b.
// Rows past n_rows are 0.
//   w [n_out rows of row_bytes(dtype, n_in)], wp [kc / 4, kInt8GemmNr, 4], ws [kc / 32, kInt8GemmNr]
void int8_gemm_pack_w(DType dtype, const uint8_t* w, int64_t n_in, int64_t o, int64_t n_rows,
                      int64_t k0, int64_t kc, uint8_t* wp, float* ws);

// One tile over blocks [b0, b0 + nb) of the packed panel (wp, ws start at block b0):
// for m < m_valid, n < n_valid: c[m * ldc + n] = (accumulate ? c[m * ldc + n] : bias ? bias[n]
// : 0) + sum_b sx[m, b] ws[b, n] (sum_i (w_i - offset) xs[m, 32 b + i]), where corr[m, b] =
// offset x sum_i xs[m, 32 b + i] cancels the weights' offset (128 for int8, 8 for int4).
//   xs [m_valid rows of ldx signed bytes, from input 32 b0], sx / corr [m_valid rows of ldb, from
//   block b0], c [m_valid, ldc]
void int8_gemm_tile(const int8_t* xs, int64_t ldx, const float* sx, const int32_t* corr,
                    int64_t ldb, const uint8_t* wp, const float* ws, int64_t nb, float* c,
                    int64_t ldc, int m_valid, int n_valid, bool accumulate, const float* bias);

}  // namespace shardlm::cpu
