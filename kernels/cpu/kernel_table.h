// The inner loops one ISA level provides, as a table of function pointers. Each level lives in
// its own translation unit compiled with that level's -m flags (table_scalar.cpp,
// table_avx2.cpp, table_avx512.cpp); the op entry points (matmul.cpp, attention.cpp, ...) pick
// a table by cpu::Context::isa, split the work over the thread pool, and call these loops.
// Nothing here threads, allocates or throws. Internal to kernels/cpu (and its tests).
// Shapes use the dimension glossary; "row" = one row-major matrix row.
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"
#include "runtime/core/dtype.h"

namespace shardlm::cpu {

// GEMV handles up to this many tokens (each weight row is streamed from memory once and reused
// from L1 for every token); more tokens go to the GEMM.
inline constexpr int64_t kGemvMaxTokens = 16;
// Fewest tokens for which a decode-sized bf16 matmul runs on AMX tiles (gemv_amx.h) where the CPU
// has them: below it tile loads stream weights slower than the VDPBF16PS GEMV (1 token: 0.5-1x
// its speed, 2: 1x, 4: 1.4x, 8: 2.7x in kernel time; whole 4-sequence steps even),
// docs/benchmarks.md.
inline constexpr int64_t kAmxGemvMinTokens = 8;
// K (n_in) block of the f32 GEMM: a packed weight panel of kGemmKc x gemm_nr floats stays in L1.
inline constexpr int64_t kGemmKc = 256;

struct KernelTable {
  Isa isa;

  // y[t * ldy + o] = sum_k x[t * n_in + k] * w[o * n_in + k] (+ bias[o]) for o in
  // [o_begin, o_end) and t < n_tokens (<= kGemvMaxTokens). f32 accumulation; f16/bf16 weights
  // are widened exactly.   x [n_tokens, n_in], w [n_out, n_in] (dtype), bias [n_out] or null,
  // y [n_tokens, ldy]
  void (*gemv)(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
               int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy);

  // f32 GEMM micro-kernel geometry: a tile is gemm_mr tokens x gemm_nr outputs.
  int gemm_mr, gemm_nr;
  // Packs weight rows [o, o + n_rows) (n_rows <= gemm_nr), columns [k0, k0 + kc), widened:
  // wp[k * gemm_nr + j] = w[(o + j) * n_in + k0 + k]; rows n_rows..gemm_nr-1 are zero.
  //   w [n_out, n_in] (dtype), wp [kc, gemm_nr]
  void (*gemm_pack_w)(const void* w, DType dtype, int64_t n_in, int64_t o, int64_t n_rows,
                      int64_t k0, int64_t kc, float* wp);
  // One tile: acc[m][n] = sum_{k < kc} xp[k * gemm_mr + m] * wp[k * gemm_nr + n]; then for
  // m < m_valid, n < n_valid: c[m * ldc + n] = (accumulate ? c[m * ldc + n] : bias ? bias[n] : 0)
  // + acc[m][n].   xp [kc, gemm_mr], wp [kc, gemm_nr], c [m_valid, ldc]
  void (*gemm_tile)(const float* xp, const float* wp, int64_t kc, float* c, int64_t ldc,
                    int m_valid, int n_valid, bool accumulate, const float* bias);

  // ---- Tiled attention (prefill): a block of queries against a range of keys ----
  // s[i * lds + j] = scale * sum_d q[i * ldq + d] * kt[d * ldk + j]   for i < n_q, j < n_keys.
  //   q [n_q, ldq], kt [head_dim, ldk] (keys transposed), s [n_q, lds]
  void (*attn_scores)(const float* q, int64_t ldq, int64_t n_q, const float* kt, int64_t ldk,
                      int64_t n_keys, int64_t head_dim, float scale, float* s, int64_t lds);
  // o[i * ldo + d] = sum_j p[i * ldp + j] * v[j * ldv + d]   for i < n_q, d < head_dim.
  //   p [n_q, ldp], v [n_keys, ldv], o [n_q, ldo]
  void (*attn_pv)(const float* p, int64_t ldp, int64_t n_q, const float* v, int64_t ldv,
                  int64_t n_keys, int64_t head_dim, float* o, int64_t ldo);

  // Decode attention pieces for one query head against n_keys cached keys of its kv head
  // (rows at a stride of ld floats):
  //   s[j] = scale * q . k_j                      q [head_dim], k [n_keys rows], s [n_keys]
  //   o[d] += sum_j p[j] * v_j[d]                 p [n_keys], v [n_keys rows], o [head_dim]
  void (*attn_scores_row)(const float* q, const float* k, int64_t ld, int64_t n_keys,
                          int64_t head_dim, float scale, float* s);
  void (*attn_pv_row)(const float* p, const float* v, int64_t ld, int64_t n_keys, int64_t head_dim,
                      float* o);
  // The same two on bf16 rows (a pointer per key), widened in registers: for the same values the
  // same bits as widening the rows first and calling the two above. The P.V takes n_rows rows
  // that share their V rows (the query heads of one GQA group), each key's V row loaded and
  // widened once for all of them; row r is what attn_pv_row gives it alone. Return false (doing
  // nothing) for a head_dim they do not cover, true for n_keys = 0 otherwise (nothing read: a way
  // to ask); null at levels that have none. The P.V prefetches the rows of keys a few keys ahead
  // unless `prefetch` is false (the caller has just read them: Context::touch_kv).
  //   k[j], v[j] -> [head_dim] bf16; p [n_rows][ldp] (n_keys used), o [n_rows][ldo] (head_dim)
  bool (*attn_scores_row_bf16)(const float* q, const uint16_t* const* k, int64_t n_keys,
                               int64_t head_dim, float scale, float* s) = nullptr;
  bool (*attn_pv_rows_bf16)(const float* p, int64_t ldp, int64_t n_rows, const uint16_t* const* v,
                            int64_t n_keys, int64_t head_dim, float* o, int64_t ldo,
                            bool prefetch) = nullptr;

  // ---- Vector loops (attention, norms, activations) ----
  float (*dot)(const float* a, const float* b, int64_t n);     // sum a[i] * b[i]
  void (*axpy)(float* y, float a, const float* x, int64_t n);  // y += a * x
  void (*scale)(float* y, float a, int64_t n);                 // y *= a
  void (*add)(float* y, const float* x, int64_t n);            // y += x
  float (*max)(const float* v, int64_t n);                     // max v[i] (n >= 1)
  float (*exp_sub_sum)(float* v, float m, int64_t n);          // v = exp(v - m); returns sum
  void (*widen)(const void* src, DType dtype, int64_t n, float* dst);  // dst = f32(src)
  // dst = bf16(src) for f8e4m3 codes: exact (bf16 holds every f8e4m3 value; NaN stays NaN).
  void (*f8e4m3_to_bf16)(const uint8_t* src, int64_t n, uint16_t* dst);
  // dst = f8e4m3(src): f32_to_f8e4m3's codes (dtype.h: nearest even, +-448 saturation, NaN kept).
  void (*f32_to_f8e4m3)(const float* src, int64_t n, uint8_t* dst);
  // out = w * (x / sqrt(mean(x^2) + eps)); out may alias x.   x, w, out [n]
  void (*rms_norm_row)(const float* x, const float* w, int64_t n, float eps, float* out);
  // out = silu(gate) * up.   gate, up, out [n]
  void (*swiglu_row)(const float* gate, const float* up, int64_t n, float* out);
};

// The table of `isa`. Throws Error(kInvalidArg) when that level was not compiled into this
// build (non-x86 builds have only kScalar). kAmx shares kAvx512's table; its tile GEMM is
// gemm_amx.h.
const KernelTable& kernel_table(Isa isa);

}  // namespace shardlm::cpu
