// int8 weights: the portable GEMV, the ISA pick, and the GEMM panel packing (see gemv_int8.h).
#include "kernels/cpu/gemv_int8.h"

#include "kernels/cpu/kernel_table.h"

#include <algorithm>
#include <cstring>

#include "runtime/core/dtype.h"
#include "runtime/core/quant.h"

namespace shardlm::cpu {

namespace {

float scale_of(const uint8_t* row, int64_t n_in, int64_t block) {
  uint16_t h;
  std::memcpy(&h, row + n_in + block * 2, 2);
  return f16_to_f32(h);
}

// Portable: one block of 32 weights is dequantized, then dotted with every token.
void gemv_int8_portable(const float* x, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                        int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t rb = row_bytes(DType::kInt8, n_in);
  for (int64_t o = o_begin; o < o_end; ++o) {
    const uint8_t* row = w + static_cast<size_t>(o) * rb;
    const uint8_t* q = row;  // q + 128
    float acc[16] = {};
    for (int64_t b = 0; b < n_in / kQuantBlock; ++b) {
      float wb[kQuantBlock];
      const float d = scale_of(row, n_in, b);
      for (int64_t i = 0; i < kQuantBlock; ++i)
        wb[i] = d * static_cast<float>(q[b * kQuantBlock + i] - 128);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xb = x + t * n_in + b * kQuantBlock;
        float s = 0;
        for (int64_t i = 0; i < kQuantBlock; ++i) s += wb[i] * xb[i];
        acc[t] += s;
      }
    }
    for (int64_t t = 0; t < n_tokens; ++t) y[t * ldy + o] = acc[t] + (bias ? bias[o] : 0.0f);
  }
}

}  // namespace

void gemv_int8(Isa isa, const float* x, int64_t n_tokens, int64_t n_in, const uint8_t* w,
               int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
#if defined(SHARDLM_CPU_X86_TABLES)
  if (isa >= Isa::kAvx512) {
    gemv_int8_avx512(x, n_tokens, n_in, w, o_begin, o_end, bias, y, ldy);
    return;
  }
#endif
  (void)isa;
  // Token groups of at most 16 (the GEMV's accumulators).
  for (int64_t t0 = 0; t0 < n_tokens; t0 += 16) {
    gemv_int8_portable(x + t0 * n_in, std::min<int64_t>(16, n_tokens - t0), n_in, w, o_begin, o_end,
                       bias, y + t0 * ldy, ldy);
  }
}

void gemm_pack_w_int8(const KernelTable& kt, const uint8_t* w, int64_t n_in, int64_t o,
                      int64_t n_rows, int64_t k0, int64_t kc, float* wp) {
  // Rows dequantized into a row-major block first (contiguous, vectorizable), then the table's
  // f32 packing does the transpose into the panel.
  float rows[kMaxGemmNr * kGemmKc];
  const size_t rb = row_bytes(DType::kInt8, n_in);
  for (int64_t j = 0; j < n_rows; ++j) {
    const uint8_t* row = w + static_cast<size_t>(o + j) * rb;
    const uint8_t* q = row;  // q + 128
    float* dst = rows + j * kc;
#if defined(SHARDLM_CPU_X86_TABLES)
    if (kt.isa >= Isa::kAvx512) {
      dequantize_blocks_avx512(row, n_in, k0, kc, dst);
      continue;
    }
#endif
    for (int64_t b = k0 / kQuantBlock; b < (k0 + kc) / kQuantBlock; ++b) {
      const float d = scale_of(row, n_in, b);
      const uint8_t* qb = q + b * kQuantBlock;
      float* db = dst + (b * kQuantBlock - k0);
      for (int64_t i = 0; i < kQuantBlock; ++i) db[i] = d * static_cast<float>(qb[i] - 128);
    }
  }
  kt.gemm_pack_w(rows, DType::kF32, kc, 0, n_rows, 0, kc, wp);
}

}  // namespace shardlm::cpu
