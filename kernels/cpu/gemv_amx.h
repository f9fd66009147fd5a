// The bf16-activation GEMV on Intel AMX tiles (TDPBF16PS), for decode-sized matmuls (1 to
// kGemvMaxTokens tokens) of bf16 weights on AMX machines. Tiles compute C = W x^T with the
// weight rows loaded in place from the mapped pack as A tiles (16 rows x 32 k), so no weight is
// copied or widened; the few tokens are the B tile's columns. A many-token step (a speculative
// verification, a batch of sequences) then costs about what a one-token step costs: the
// VDPBF16PS GEMV does one instruction per 32 weights and token pair, the tile one per 16 x 32
// weights for all tokens at once.
//
// Every output element is summed by the tile unit in the same order whatever the token count,
// the row range or the thread, so a row's result does not depend on how many tokens share the
// call (deterministic mode relies on it). Not here: the prefill GEMM (gemm_amx.h), threading
// (the caller splits row blocks), the VDPBF16PS GEMV (gemv_bf16_dot.h). Only compiled on x86-64
// with AMX flags; callers check amx_gemv_supported() first. Internal to kernels/cpu.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shardlm::cpu {

// Whether the AMX GEMV takes this shape (n_in a multiple of 32; any n_out) and this process may
// use the tiles (asked once, then remembered).
bool amx_gemv_supported(int64_t n_in);

// Bytes of the packed activations of n_tokens tokens (what amx_gemv_pack_x writes).
size_t amx_gemv_packed_x_bytes(int64_t n_tokens, int64_t n_in);

// Packs bf16 activations into B tiles: per 32-wide k block, 16 rows (k pairs 2r, 2r + 1) of
// n_tokens x 2 bf16.   xb [n_tokens, n_in] bf16 -> xt [n_in / 32][16][n_tokens][2] bf16
void amx_gemv_pack_x(const uint16_t* xb, int64_t n_tokens, int64_t n_in, uint16_t* xt);

// y[t * ldy + o] = sum_k x[t, k] w[o, k] (+ bias[o]) for o in [o_begin, o_end) and t < n_tokens
// (1 to 16). o_begin must be a multiple of 16 (row blocks), o_end a multiple of 16 or n_out.
// Configures and releases the calling thread's tiles.
//   xt from amx_gemv_pack_x, w [n_out, n_in] bf16, bias [n_out] f32 or null, y [n_tokens, ldy]
void amx_gemv_rows(const uint16_t* xt, int64_t n_tokens, int64_t n_in, const uint16_t* w,
                   int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy);

}  // namespace shardlm::cpu
