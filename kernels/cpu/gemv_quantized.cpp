// Quantized weights: the portable GEMV, the ISA pick, and the GEMM panel packing (see
// gemv_quantized.h).
#include "kernels/cpu/gemv_quantized.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/kernel_table.h"
#include "runtime/core/quant.h"

namespace shardlm::cpu {

namespace {

// Block b of a quantized row, dequantized.   row [row_bytes(dtype, n_in)], out [kQuantBlock]
void dequantize_block(DType dtype, const uint8_t* row, int64_t n_in, int64_t b, float* out) {
  uint16_t h;
  std::memcpy(&h, row + quant_scale_at(dtype, n_in, b), 2);
  const float d = f16_to_f32(h);
  if (is_int4(dtype)) {
    uint8_t q[kQuantBlock];  // q + 8
    unpack_block_int4(row, n_in, b, q);
    for (int64_t i = 0; i < kQuantBlock; ++i) out[i] = d * static_cast<float>(q[i] - 8);
    return;
  }
  uint8_t q[kQuantBlock];  // q + 128
  unpack_block_int8(row, n_in, b, q);
  for (int64_t i = 0; i < kQuantBlock; ++i) out[i] = d * static_cast<float>(q[i] - 128);
}

// Portable: one block of 32 weights is dequantized, then dotted with every token (<= 16).
void gemv_portable(DType dtype, const float* x, int64_t n_tokens, int64_t n_in, const uint8_t* w,
                   int64_t o_begin, int64_t o_end, const float* bias, float* y, int64_t ldy) {
  const size_t rb = row_bytes(dtype, n_in);
  for (int64_t o = o_begin; o < o_end; ++o) {
    const uint8_t* row = w + static_cast<size_t>(o) * rb;
    float acc[16] = {};
    for (int64_t b = 0; b < n_in / kQuantBlock; ++b) {
      float wb[kQuantBlock];
      dequantize_block(dtype, row, n_in, b, wb);
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

void gemv_quantized(Isa isa, DType dtype, const float* x, int64_t n_tokens, int64_t n_in,
                    const uint8_t* w, int64_t o_begin, int64_t o_end, const float* bias, float* y,
                    int64_t ldy) {
#if defined(SHARDLM_CPU_X86_TABLES)
  if (isa >= Isa::kAvx512) {
    gemv_quantized_avx512(dtype, x, n_tokens, n_in, w, o_begin, o_end, bias, y, ldy);
    return;
  }
#endif
  (void)isa;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += 16) {
    gemv_portable(dtype, x + t0 * n_in, std::min<int64_t>(16, n_tokens - t0), n_in, w, o_begin,
                  o_end, bias, y + t0 * ldy, ldy);
  }
}

void quantize_activations_int8(Isa isa, const float* x, int64_t n, uint8_t* out) {
#if defined(SHARDLM_CPU_X86_TABLES)
  if (isa >= Isa::kAvx512) {
    quantize_row_int8_avx512(x, n, out);
    return;
  }
  if (isa >= Isa::kAvx2) {
    quantize_row_int8_avx2(x, n, out);
    return;
  }
#endif
  (void)isa;
  quantize_row_int8(x, n, out);
}

void arrange_activations(const uint8_t* xq, int64_t n_in, uint8_t* xa) {
  const int64_t nb = n_in / kQuantBlock;
  uint8_t* scales = xa + n_in;
  uint8_t* sums = scales + nb * 4;
  for (int64_t g = 0; g * kQuantGroupBlocks < nb; ++g) {
    const int64_t G = std::min<int64_t>(kQuantGroupBlocks, nb - g * kQuantGroupBlocks);
    const uint8_t* src = xq + g * 512;
    uint8_t* dst = xa + g * 512;
    for (int64_t j = 0; j < G; ++j) {
      for (int64_t c = 0; c < 8; ++c) {  // inputs 4 c .. 4 c + 3 of the block
        uint32_t v;
        std::memcpy(&v, src + 32 * j + 4 * c, 4);
        v ^= 0x80808080u;  // q + 128 -> q
        std::memcpy(dst + 4 * G * c + 4 * j, &v, 4);
      }
      int32_t sum = 0;  // of the stored q + 128
      for (int64_t i = 0; i < kQuantBlock; ++i) sum += src[32 * j + i];
      const int64_t b = g * kQuantGroupBlocks + j;
      const int32_t q_sum = sum - 128 * static_cast<int32_t>(kQuantBlock);
      uint16_t h;
      std::memcpy(&h, xq + n_in + b * 2, 2);
      const float scale = f16_to_f32(h);
      std::memcpy(scales + b * 4, &scale, 4);
      std::memcpy(sums + b * 4, &q_sum, 4);
    }
  }
}

void prepare_int8_activations(Isa isa, const float* x, int64_t n_in, uint8_t* scratch,
                              uint8_t* out) {
  quantize_activations_int8(isa, x, n_in, scratch);
  arrange_activations(scratch, n_in, out);
}

Int8ActivationGemv int8_activation_gemv(Isa isa) {
#if defined(SHARDLM_CPU_INT8_DOT)
  static const bool vnni = int8_dot_supported();
  if (vnni && isa >= Isa::kAvx512) return gemv_quantized_vnni;
#endif
#if defined(SHARDLM_CPU_X86_TABLES)
  if (isa == Isa::kAvx2) return gemv_quantized_int8x_avx2;
#endif
  (void)isa;
  return nullptr;
}

void dequantize_range(Isa isa, DType dtype, const uint8_t* row, int64_t n_in, int64_t k0,
                      int64_t kc, float* out) {
#if defined(SHARDLM_CPU_X86_TABLES)
  if (isa >= Isa::kAvx512) {
    dequantize_blocks_avx512(dtype, row, n_in, k0, kc, out);
    return;
  }
  if (isa >= Isa::kAvx2) {
    dequantize_blocks_avx2(dtype, row, n_in, k0, kc, out);
    return;
  }
#endif
  (void)isa;
  for (int64_t b = k0 / kQuantBlock; b < (k0 + kc) / kQuantBlock; ++b)
    dequantize_block(dtype, row, n_in, b, out + (b * kQuantBlock - k0));
}

void gemm_pack_w_quantized(const KernelTable& kt, DType dtype, const uint8_t* w, int64_t n_in,
                           int64_t o, int64_t n_rows, int64_t k0, int64_t kc, float* wp) {
  // Rows dequantized into a row-major block first (contiguous, vectorizable), then the table's
  // f32 packing does the transpose into the panel.
  float rows[kMaxGemmNr * kGemmKc];
  const size_t rb = row_bytes(dtype, n_in);
  for (int64_t j = 0; j < n_rows; ++j)
    dequantize_range(kt.isa, dtype, w + static_cast<size_t>(o + j) * rb, n_in, k0, kc,
                     rows + j * kc);
  kt.gemm_pack_w(rows, DType::kF32, kc, 0, n_rows, 0, kc, wp);
}

}  // namespace shardlm::cpu
