// Prefill GEMM of bf16 weights (and of int8/int4 weights dequantized to bf16 group by group) on
// Intel AMX tiles (TDPBF16PS, f32 accumulation), used by
// cpu::matmul when the ISA level is kAmx. Tiles compute C^T = W x^T: A tiles are 16 weight rows
// x 32 k, copied group by group from the mapped pack into a per-thread scratch of contiguous
// tiles (the pack itself is never modified or copied whole), B tiles hold the activations
// transposed into AMX's pair-interleaved layout, packed once per call by amx_pack_x.
// Precision: the f32 activations are split into `n_split` bf16 parts (hi, mid, lo). With 3
// parts the split is exact (8 + 8 + 8 significant bits) and every product with a bf16 weight
// is exact in f32, so the result carries only f32 accumulation error, like the FMA path; 1 part
// rounds the activations to bf16 (3x less tile work, ~2^-9 relative error per product).
// Only compiled on x86-64; callers check amx_gemm_supported() and the ISA level first.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/core/dtype.h"

namespace shardlm::cpu {

// bf16 or quantized (int8, int4, int4g128) weights with n_in % 32 == 0 and n_out % 16 == 0.
// Quantized rows are dequantized and rounded to bf16 as each group is packed (the bf16 activation
// mode's prefill on AMX, with one split: the products of the VDPBF16PS GEMM on bf16 panels).
bool amx_gemm_supported(DType dtype, int64_t n_in, int64_t n_out);

// Token blocks of the packed activations: tokens are padded to a multiple of 32.
int64_t amx_token_blocks(int64_t n_tokens);  // of 16 tokens, even
size_t amx_packed_x_bytes(int64_t n_tokens, int64_t n_in, int n_split);

// Packs token blocks [tb_begin, tb_end) (of 16 tokens) of x into B tiles of
// 16 rows (k pairs 2r, 2r+1 of a 32-wide k block) x 16 tokens x 2 bf16, ordered [tb / 2][kb]
// [part][tb % 2] (what one k step reads is contiguous). Padding tokens are zero.
//   x [n_tokens, n_in], xb [amx_token_blocks / 2, n_in / 32, n_split, 2, 16, 16, 2] (bf16)
void amx_pack_x(const float* x, int64_t n_tokens, int64_t n_in, int n_split, int64_t tb_begin,
                int64_t tb_end, uint16_t* xb);

// Weight rows amx_gemm_rows packs and reuses at a time (a multiple of 48), and the bytes of the
// per-thread scratch that holds them (64-byte aligned).
int64_t amx_group_rows(int64_t n_in);
size_t amx_packed_w_bytes(int64_t n_in);

// y[t, o] = sum_k x[t, k] w[o, k] (+ bias[o]) for o in [o_begin, o_end) (multiples of 16) and
// every token. Configures and releases the calling thread's tiles.
//   xb from amx_pack_x, w [n_out, n_in] (dtype), bias [n_out] or null, y [n_tokens, n_out],
//   wp: this thread's scratch of amx_packed_w_bytes(n_in) bytes, 64-byte aligned
void amx_gemm_rows(const uint16_t* xb, int64_t n_tokens, int64_t n_in, int n_split, const void* w,
                   DType dtype, int64_t n_out, const float* bias, float* y, int64_t o_begin,
                   int64_t o_end, uint8_t* wp);

}  // namespace shardlm::cpu
