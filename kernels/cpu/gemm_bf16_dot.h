// The bf16-activation GEMM (prefill-sized matmuls of MatmulActivations::kBf16 on CPUs with
// AVX-512 BF16 but no AMX): activations rounded to bf16 against bf16 weights with VDPBF16PS, a
// 12-token x 32-output register tile over k pairs. Compiled only where the compiler takes
// -mavx512bf16 (SHARDLM_CPU_BF16_DOT) and called only when bf16_dot_supported(). The pieces are
// the packing steps and the tile; matmul.cpp threads them (as it does the f32 GEMM). Nothing here
// threads, allocates or throws. Internal to kernels/cpu.
//
// A "pair" is two neighbouring k elements held as one 32-bit word (low half = even k), the unit
// VDPBF16PS multiplies. Odd n_in is padded with a zero element, which adds 0 * 0.
#pragma once

#include <cstdint>

namespace shardlm::cpu {

inline constexpr int64_t kBf16GemmMr = 12;  // tokens per register tile
inline constexpr int64_t kBf16GemmNr = 32;  // outputs per register tile (2 vectors)
// k pairs per packed weight panel: 128 KiB, held in L2 while every token panel sweeps it. The
// panel's 32 rows are then read in runs of 2 KiB, which the hardware prefetchers follow; with 128
// pairs (16 KiB, L1) the rows' 256-byte runs missed to memory between sweeps (Zen 4, prefill
// 512 at 2 threads: Llama-1B +5%, Qwen3-0.6B +4%, Qwen2-0.5B +4%; 2048 pairs no better).
inline constexpr int64_t kBf16GemmKcPairs = 1024;

// k pairs per row.
inline int64_t bf16_pairs(int64_t n_in) {
  return (n_in + 1) / 2;
}

// k pairs per block of the packed activations (and per weight panel) for rows of n_in.
inline int64_t bf16_gemm_block_pairs(int64_t n_in) {
  return bf16_pairs(n_in) < kBf16GemmKcPairs ? bf16_pairs(n_in) : kBf16GemmKcPairs;
}

// Rounds token panels [mp_begin, mp_end) of x (rows ldx apart) to bf16 (nearest even) and packs
// them k block major, so that one k block of every token panel is one sequential stream: pair p
// of token mp * kBf16GemmMr + m (0 past n_tokens) goes to
// xp[((p / kb) * n_panels + mp) * kb * kBf16GemmMr + (p % kb) * kBf16GemmMr + m], kb =
// bf16_gemm_block_pairs(n_in), n_panels = ceil(n_tokens / kBf16GemmMr) (bf16_gemm_x_words words
// in all).   x [n_tokens, ldx] f32 (ldx >= n_in), xp [n_blocks, n_panels, kb, kBf16GemmMr] pairs
void bf16_gemm_pack_x(const float* x, int64_t n_tokens, int64_t n_in, int64_t ldx, int64_t mp_begin,
                      int64_t mp_end, uint32_t* xp);

// Words bf16_gemm_pack_x writes for n_tokens x n_in (the last k block padded to a whole block).
inline int64_t bf16_gemm_x_words(int64_t n_tokens, int64_t n_in) {
  const int64_t n_panels = (n_tokens + kBf16GemmMr - 1) / kBf16GemmMr;
  const int64_t kb = bf16_gemm_block_pairs(n_in);
  const int64_t n_blocks = (bf16_pairs(n_in) + kb - 1) / kb;
  return n_blocks * n_panels * kb * kBf16GemmMr;
}

// Packs weight rows [o, o + n_rows) (n_rows <= kBf16GemmNr), pairs [p0, p0 + pc):
// wp[p * kBf16GemmNr + j] = pair p0 + p of row o + j; rows past n_rows are 0.
//   w [n_out, n_in] bf16, wp [pc, kBf16GemmNr] pairs
void bf16_gemm_pack_w(const uint16_t* w, int64_t n_in, int64_t o, int64_t n_rows, int64_t p0,
                      int64_t pc, uint32_t* wp);

// bf16_gemm_pack_w for weights stored transposed (k major: row k holds input k of every
// output, rows ld elements apart): wp[p * kBf16GemmNr + j] = pair (w[2(p0 + p) * ld + o + j],
// w[(2(p0 + p) + 1) * ld + o + j]), an element past row n_in - 1 or column o + n_cols - 1
// being 0 (n_cols <= kBf16GemmNr).   w [n_in, ld] bf16, wp [pc, kBf16GemmNr] pairs
void bf16_gemm_pack_w_kmajor(const uint16_t* w, int64_t n_in, int64_t ld, int64_t o, int64_t n_cols,
                             int64_t p0, int64_t pc, uint32_t* wp);

// One tile: acc[m][n] = sum_{p < pc} dot(xp[p * kBf16GemmMr + m], wp[p * kBf16GemmNr + n]); then
// for m < m_valid, n < n_valid: c[m * ldc + n] = (c_in ? c_in[m * kBf16GemmNr + n] : bias ?
// bias[n] : 0) + acc[m][n]. c_in is a whole tile of partial sums (an earlier k block's c with
// ldc = kBf16GemmNr; it may be c itself). Products exact, sums in f32 (denormals flushed, as the
// instruction does).
//   xp [pc, kBf16GemmMr], wp [pc, kBf16GemmNr], c_in [kBf16GemmMr, kBf16GemmNr] or null,
//   bias [n_valid] or null, c [m_valid, ldc]
void bf16_gemm_tile(const uint32_t* xp, const uint32_t* wp, int64_t pc, const float* c_in,
                    const float* bias, float* c, int64_t ldc, int m_valid, int n_valid);

}  // namespace shardlm::cpu
