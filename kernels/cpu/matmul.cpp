// cpu::matmul: picks GEMV (decode), the AMX tile GEMM (bf16 prefill on AMX machines) or the
// f32 FMA GEMM — or, for bf16 activations, the VDPBF16PS GEMV and GEMM, and the AMX tile GEMV
// for decode steps of 8+ tokens — and splits the work over the thread pool. Every output element is
// computed by one thread from start to end, so results do not depend on the thread count.
#include <algorithm>
#include <atomic>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/gemm_int8_vnni.h"
#include "kernels/cpu/gemv_quantized.h"
#include "kernels/cpu/kernel_table.h"
#include "runtime/core/quant.h"
#if defined(SHARDLM_CPU_AMX)
#include "kernels/cpu/gemm_amx.h"
#include "kernels/cpu/gemv_amx.h"
#endif
#if defined(SHARDLM_CPU_BF16_DOT)
#include "kernels/cpu/gemm_bf16_dot.h"
#include "kernels/cpu/gemv_bf16_dot.h"
#endif

namespace shardlm::cpu {

namespace {

// Rows per GEMV chunk: a thread streams at least this many weight rows per wake-up.
constexpr int64_t kGemvMinRows = 16;
constexpr int64_t kGemvChunksPerThread = 4;

// f32 GEMM: activations packed once into [token panel][k][gemm_mr]; each thread owns a range of
// gemm_nr-wide output panels and, per kGemmKc block of k, packs the panel's weights (widened)
// and sweeps every token panel with the micro-kernel.
void gemm_f32(const Context& ctx, const KernelTable& kt, const float* x, int64_t n_tokens,
              int64_t n_in, const void* w, DType dtype, int64_t n_out, const float* bias,
              float* y) {
  const int64_t mr = kt.gemm_mr, nr = kt.gemm_nr;
  const int64_t n_mp = (n_tokens + mr - 1) / mr;
  const int64_t n_np = (n_out + nr - 1) / nr;
  const int n_threads = static_cast<int>(std::min<int64_t>(ctx.pool.size(), n_np));
  const size_t xp_floats = static_cast<size_t>(n_mp * n_in * mr);
  const size_t wp_floats = static_cast<size_t>(kGemmKc * nr);
  float* xp = static_cast<float*>(
      ctx.workspace.get((xp_floats + wp_floats * static_cast<size_t>(n_threads)) * sizeof(float)));
  float* wp_all = xp + xp_floats;

  ctx.pool.parallel_for(n_mp, [&](int64_t begin, int64_t end) {
    for (int64_t mp = begin; mp < end; ++mp) {
      float* dst = xp + mp * n_in * mr;
      for (int64_t m = 0; m < mr; ++m) {
        const int64_t t = mp * mr + m;
        for (int64_t k = 0; k < n_in; ++k) dst[k * mr + m] = t < n_tokens ? x[t * n_in + k] : 0.0f;
      }
    }
  });

  ctx.pool.run(n_threads, [&](int thread, int nth) {
    float* wp = wp_all + static_cast<size_t>(thread) * wp_floats;
    const int64_t np_begin = n_np * thread / nth, np_end = n_np * (thread + 1) / nth;
    for (int64_t np = np_begin; np < np_end; ++np) {
      const int64_t o = np * nr;
      const int n_valid = static_cast<int>(std::min(nr, n_out - o));
      for (int64_t k0 = 0; k0 < n_in; k0 += kGemmKc) {
        const int64_t kc = std::min(kGemmKc, n_in - k0);
        if (is_quantized(dtype)) {
          gemm_pack_w_quantized(kt, dtype, static_cast<const uint8_t*>(w), n_in, o, n_valid, k0, kc,
                                wp);
        } else {
          kt.gemm_pack_w(w, dtype, n_in, o, n_valid, k0, kc, wp);
        }
        for (int64_t mp = 0; mp < n_mp; ++mp) {
          const int m_valid = static_cast<int>(std::min(mr, n_tokens - mp * mr));
          kt.gemm_tile(xp + (mp * n_in + k0) * mr, wp, kc, y + mp * mr * n_out + o, n_out, m_valid,
                       n_valid, k0 > 0, k0 == 0 && bias ? bias + o : nullptr);
        }
      }
    }
  });
}

#if defined(SHARDLM_CPU_AMX)
// AMX: activations split and packed into B tiles once (token blocks over the pool), then each
// thread runs the tile GEMM over its share of 16-row blocks of weights.
void gemm_amx(const Context& ctx, const float* x, int64_t n_tokens, int64_t n_in, const void* w,
              DType dtype, int64_t n_out, const float* bias, float* y) {
  const int n_split = std::clamp(ctx.amx_splits, 1, 3);
  const int64_t n_blocks = n_out / 16;
  const int n_threads = static_cast<int>(std::min<int64_t>(ctx.pool.size(), n_blocks));
  // Workspace: the packed activations, then one packed-weight group per thread.
  const size_t x_bytes = amx_packed_x_bytes(n_tokens, n_in, n_split);
  const size_t w_bytes = amx_packed_w_bytes(n_in);
  uint8_t* ws = static_cast<uint8_t*>(ctx.workspace.get(x_bytes + n_threads * w_bytes));
  uint16_t* xb = reinterpret_cast<uint16_t*>(ws);
  ctx.pool.parallel_for(amx_token_blocks(n_tokens), [&](int64_t begin, int64_t end) {
    amx_pack_x(x, n_tokens, n_in, n_split, begin, end, xb);
  });
  ctx.pool.run(n_threads, [&](int thread, int nth) {
    const int64_t b0 = n_blocks * thread / nth, b1 = n_blocks * (thread + 1) / nth;
    if (b0 < b1) {
      amx_gemm_rows(xb, n_tokens, n_in, n_split, w, dtype, n_out, bias, y, b0 * 16, b1 * 16,
                    ws + x_bytes + thread * w_bytes);
    }
  });
}
#endif

#if defined(SHARDLM_CPU_BF16_DOT)
// The bf16 GEMM's weight panel from quantized rows: rows [o, o + n_rows), pairs [p0, p0 + pc)
// dequantized, rounded to bf16, then packed as bf16_gemm_pack_w packs bf16 rows, kSub pairs at a
// time (the row buffers stay small; wp's pairs are contiguous, so each piece is a run of it).
//   w [n_out rows of row_bytes(dtype, n_in)], wp [pc, kBf16GemmNr] pairs
void bf16_gemm_pack_w_quantized(Isa isa, DType dtype, const uint8_t* w, int64_t n_in, int64_t o,
                                int64_t n_rows, int64_t p0, int64_t pc, uint32_t* wp) {
  constexpr int64_t kSub = 128;  // pairs: a multiple of 16, so every piece is whole blocks
  float row[2 * kSub];
  uint16_t rows[kBf16GemmNr * 2 * kSub];
  const size_t rb = row_bytes(dtype, n_in);
  for (int64_t s0 = 0; s0 < pc; s0 += kSub) {
    const int64_t sc = std::min(kSub, pc - s0);
    const int64_t k0 = 2 * (p0 + s0), kc = 2 * sc;  // whole blocks: p0 and pc are multiples of 16
    for (int64_t j = 0; j < n_rows; ++j) {
      dequantize_range(isa, dtype, w + static_cast<size_t>(o + j) * rb, n_in, k0, kc, row);
      round_to_bf16_avx512(row, kc, rows + j * kc);
    }
    bf16_gemm_pack_w(rows, kc, 0, n_rows, 0, sc, wp + s0 * kBf16GemmNr);
  }
}

// VDPBF16PS GEMM: activations rounded and packed into pair panels once (token panels over the
// pool), then each thread owns a range of 32-output panels and, per block of k pairs
// (bf16_gemm_block_pairs, <= kBf16GemmKcPairs), packs the panel's weights and sweeps every token
// panel with the tile (as gemm_f32).
// The partial sums of a panel live in a contiguous per-thread buffer until its last k block
// stores them into y: y's rows are n_out apart, a multiple of 4 KiB on every real shape, so its
// tiles alias onto a few cache sets and fall out of L1 and L2 between k blocks (512 x 1024 ->
// 3072: 196 GFLOP/s against 204 for n_out 3104 before this, one Zen 4 core).
// w is bf16, or quantized (dequantized and rounded to bf16 as each panel is packed).
void gemm_bf16_dot(const Context& ctx, const float* x, int64_t n_tokens, int64_t n_in,
                   const void* w, DType dtype, int64_t n_out, const float* bias, float* y) {
  const int64_t mr = kBf16GemmMr, nr = kBf16GemmNr, kc = bf16_gemm_block_pairs(n_in);
  const int64_t n_pairs = bf16_pairs(n_in);
  const int64_t n_mp = (n_tokens + mr - 1) / mr;
  const int64_t n_np = (n_out + nr - 1) / nr;
  const int n_threads = static_cast<int>(std::min<int64_t>(ctx.pool.size(), n_np));
  const size_t xp_words = static_cast<size_t>(bf16_gemm_x_words(n_tokens, n_in));
  const size_t wp_words = static_cast<size_t>(kc * nr);
  const size_t acc_words = n_pairs > kc ? static_cast<size_t>(n_mp * mr * nr) : 0;
  uint32_t* xp = static_cast<uint32_t*>(ctx.workspace.get(
      (xp_words + (wp_words + acc_words) * static_cast<size_t>(n_threads)) * sizeof(uint32_t)));
  uint32_t* per_thread = xp + xp_words;
  ctx.pool.parallel_for(n_mp, [&](int64_t begin, int64_t end) {
    bf16_gemm_pack_x(x, n_tokens, n_in, n_in, begin, end, xp);
  });
  ctx.pool.run(n_threads, [&](int thread, int nth) {
    uint32_t* wp = per_thread + static_cast<size_t>(thread) * (wp_words + acc_words);
    float* acc = reinterpret_cast<float*>(wp + wp_words);  // [n_mp, mr, nr] partial sums
    const int64_t np_begin = n_np * thread / nth, np_end = n_np * (thread + 1) / nth;
    for (int64_t np = np_begin; np < np_end; ++np) {
      const int64_t o = np * nr;
      const int n_valid = static_cast<int>(std::min(nr, n_out - o));
      for (int64_t p0 = 0; p0 < n_pairs; p0 += kc) {
        const int64_t pc = std::min(kc, n_pairs - p0);
        const bool first = p0 == 0, last = p0 + pc == n_pairs;
        if (is_quantized(dtype)) {
          bf16_gemm_pack_w_quantized(ctx.isa, dtype, static_cast<const uint8_t*>(w), n_in, o,
                                     n_valid, p0, pc, wp);
        } else {
          bf16_gemm_pack_w(static_cast<const uint16_t*>(w), n_in, o, n_valid, p0, pc, wp);
        }
        const uint32_t* xb = xp + (p0 / kc) * n_mp * kc * mr;  // this k block of every panel
        for (int64_t mp = 0; mp < n_mp; ++mp) {
          float* acc_tile = acc + mp * mr * nr;
          const float* c_in = first ? nullptr : acc_tile;
          const float* b = first && bias ? bias + o : nullptr;
          if (last) {
            const int m_valid = static_cast<int>(std::min(mr, n_tokens - mp * mr));
            bf16_gemm_tile(xb + mp * kc * mr, wp, pc, c_in, b, y + mp * mr * n_out + o, n_out,
                           m_valid, n_valid);
          } else {
            // Columns past n_valid are neither written nor read from bias (it ends there);
            // their acc_tile lanes hold whatever the buffer held and are never stored to y.
            bf16_gemm_tile(xb + mp * kc * mr, wp, pc, c_in, b, acc_tile, nr, static_cast<int>(mr),
                           n_valid);
          }
        }
      }
    }
  });
}
#endif

#if defined(SHARDLM_CPU_INT8_DOT)
// int8 GEMM (gemm_int8_vnni.h): every token row quantized once (signed bytes in place of the
// stored q + 128, f32 scales, the weights' offset times each block's sum), then each thread owns
// a range of 32-output panels and, per kInt8GemmKc inputs, packs the panel and sweeps every token
// tile (as gemm_bf16_dot).
void gemm_int8(const Context& ctx, const float* x, int64_t n_tokens, int64_t n_in, const uint8_t* w,
               DType dtype, int64_t n_out, const float* bias, float* y) {
  const int64_t mr = kInt8GemmMr, nr = kInt8GemmNr;
  const int64_t nb = n_in / kQuantBlock;
  const size_t xrb = row_bytes(DType::kInt8, n_in);
  const int64_t n_np = (n_out + nr - 1) / nr;
  const int n_threads = static_cast<int>(std::min<int64_t>(ctx.pool.size(), n_np));
  const int64_t kc_max = std::min<int64_t>(kInt8GemmKc, n_in);
  auto round64 = [](size_t b) { return (b + 63) / 64 * 64; };
  const size_t x_bytes = round64(xrb * static_cast<size_t>(n_tokens));
  const size_t s_bytes = round64(static_cast<size_t>(n_tokens * nb) * 4);
  const size_t wp_bytes = round64(static_cast<size_t>(kc_max * nr));
  const size_t ws_bytes = round64(static_cast<size_t>(kc_max / kQuantBlock * nr) * 4);
  uint8_t* base = static_cast<uint8_t*>(ctx.workspace.get(
      x_bytes + 2 * s_bytes + (wp_bytes + ws_bytes) * static_cast<size_t>(n_threads)));
  uint8_t* xq = base;
  float* sx = reinterpret_cast<float*>(base + x_bytes);
  int32_t* corr = reinterpret_cast<int32_t*>(base + x_bytes + s_bytes);
  uint8_t* per_thread = base + x_bytes + 2 * s_bytes;
  const int32_t offset = is_int4(dtype) ? 8 : 128;
  ctx.pool.parallel_for(n_tokens, [&](int64_t t_begin, int64_t t_end) {
    for (int64_t t = t_begin; t < t_end; ++t) {
      uint8_t* row = xq + static_cast<size_t>(t) * xrb;
      quantize_activations_int8(ctx.isa, x + t * n_in, n_in, row);
      for (int64_t b = 0; b < nb; ++b) {
        int32_t sum = 0;
        for (int64_t i = b * kQuantBlock; i < (b + 1) * kQuantBlock; ++i) {
          row[i] ^= 0x80;  // q + 128 -> q as a signed byte
          sum += static_cast<int8_t>(row[i]);
        }
        uint16_t h;
        std::memcpy(&h, row + n_in + b * 2, 2);
        sx[t * nb + b] = f16_to_f32(h);
        corr[t * nb + b] = offset * sum;
      }
    }
  });
  const auto* xs = reinterpret_cast<const int8_t*>(xq);
  ctx.pool.run(n_threads, [&](int thread, int nth) {
    uint8_t* wp = per_thread + static_cast<size_t>(thread) * (wp_bytes + ws_bytes);
    float* ws = reinterpret_cast<float*>(wp + wp_bytes);
    const int64_t np_begin = n_np * thread / nth, np_end = n_np * (thread + 1) / nth;
    for (int64_t np = np_begin; np < np_end; ++np) {
      const int64_t o = np * nr;
      const int n_valid = static_cast<int>(std::min(nr, n_out - o));
      for (int64_t k0 = 0; k0 < n_in; k0 += kInt8GemmKc) {
        const int64_t kc = std::min(kInt8GemmKc, n_in - k0);
        int8_gemm_pack_w(dtype, w, n_in, o, n_valid, k0, kc, wp, ws);
        for (int64_t m0 = 0; m0 < n_tokens; m0 += mr) {
          const int m_valid = static_cast<int>(std::min(mr, n_tokens - m0));
          int8_gemm_tile(xs + static_cast<size_t>(m0) * xrb + k0, static_cast<int64_t>(xrb),
                         sx + m0 * nb + k0 / kQuantBlock, corr + m0 * nb + k0 / kQuantBlock, nb, wp,
                         ws, kc / kQuantBlock, y + m0 * n_out + o, n_out, m_valid, n_valid, k0 > 0,
                         k0 == 0 && bias ? bias + o : nullptr);
        }
      }
    }
  });
}
#endif

// Splits output rows [0, n_out) of a decode-sized matmul into chunks, kGemvChunksPerThread per
// thread, claimed dynamically: a thread slowed down (another process on its core, a slower
// memory channel) takes fewer chunks instead of making the others wait at the end of the op.
template <class Rows>
void gemv_chunks(const Context& ctx, int64_t n_out, const Rows& rows, int64_t unit = 1) {
  const int64_t n_units = (n_out + unit - 1) / unit;
  const int64_t min_units = std::max<int64_t>(1, kGemvMinRows / unit);
  const int64_t n_threads =
      std::min<int64_t>(ctx.pool.size(), std::max<int64_t>(1, n_units / min_units));
  const int64_t n_chunks = std::min<int64_t>(n_threads * kGemvChunksPerThread,
                                             std::max<int64_t>(1, n_units / min_units));
  if (n_threads <= 1) {
    rows(int64_t{0}, n_out);
    return;
  }
  std::atomic<int64_t> next{0};
  ctx.pool.run(static_cast<int>(n_threads), [&](int, int) {
    for (int64_t c = next.fetch_add(1); c < n_chunks; c = next.fetch_add(1)) {
      rows(std::min(n_out, n_units * c / n_chunks * unit),
           std::min(n_out, n_units * (c + 1) / n_chunks * unit));
    }
  });
}

void matmul_f32_activations(const Context& ctx, const float* x, int64_t n_tokens, int64_t n_in,
                            const void* w, DType dtype, int64_t n_out, const float* bias,
                            float* y) {
  const KernelTable& kt = kernel_table(ctx.isa);
  if (n_tokens <= kGemvMaxTokens && is_quantized(dtype)) {
    // Quantized weights x int8 activations (VNNI, AVX2): activations quantized once per matmul,
    // like an int8 weight row, and arranged in the rows' interleaved order.
    if (const Int8ActivationGemv int8_gemv = int8_activation_gemv(ctx.isa)) {
      const size_t xrb = arranged_activation_row_bytes(n_in);
      const size_t scratch = row_bytes(DType::kInt8, n_in);
      uint8_t* xq = static_cast<uint8_t*>(
          ctx.workspace.get(scratch + xrb * static_cast<size_t>(n_tokens), 1));
      for (int64_t t = 0; t < n_tokens; ++t)
        prepare_int8_activations(ctx.isa, x + t * n_in, n_in, xq, xq + scratch + t * xrb);
      xq += scratch;
      gemv_chunks(ctx, n_out, [&](int64_t o_begin, int64_t o_end) {
        int8_gemv(xq, n_tokens, n_in, static_cast<const uint8_t*>(w), dtype, o_begin, o_end, bias,
                  y, n_out);
      });
      return;
    }
    gemv_chunks(ctx, n_out, [&](int64_t o_begin, int64_t o_end) {
      gemv_quantized(ctx.isa, dtype, x, n_tokens, n_in, static_cast<const uint8_t*>(w), o_begin,
                     o_end, bias, y, n_out);
    });
    return;
  }
  if (n_tokens <= kGemvMaxTokens) {
    gemv_chunks(ctx, n_out, [&](int64_t o_begin, int64_t o_end) {
      kt.gemv(x, n_tokens, n_in, w, dtype, o_begin, o_end, bias, y, n_out);
    });
    return;
  }
#if defined(SHARDLM_CPU_AMX)
  if (ctx.isa >= Isa::kAmx && dtype == DType::kBF16 && amx_gemm_supported(dtype, n_in, n_out) &&
      enable_amx()) {
    gemm_amx(ctx, x, n_tokens, n_in, w, DType::kBF16, n_out, bias, y);
    return;
  }
#endif
  gemm_f32(ctx, kt, x, n_tokens, n_in, w, dtype, n_out, bias, y);
}

// Whether a GEMM of this shape and weight dtype (bf16, or quantized in the bf16 mode) runs on AMX
// tiles.
bool amx_gemm_for([[maybe_unused]] const Context& ctx, [[maybe_unused]] DType dtype,
                  [[maybe_unused]] int64_t n_in, [[maybe_unused]] int64_t n_out) {
#if defined(SHARDLM_CPU_AMX)
  static const bool tiles = enable_amx();
  return ctx.isa >= Isa::kAmx && amx_gemm_supported(dtype, n_in, n_out) && tiles;
#else
  return false;
#endif
}
bool amx_bf16_gemm(const Context& ctx, int64_t n_in, int64_t n_out) {
  return amx_gemm_for(ctx, DType::kBF16, n_in, n_out);
}

// x rounded to bf16 and widened back, rows split over the pool: what the AMX GEMM with one part
// (which truncates, keeping these values) and the f32 kernels multiply in the bf16 mode.
//   x [n_tokens, n_in] -> xr [n_tokens, n_in]
void round_activations_f32(const Context& ctx, const float* x, int64_t n_tokens, int64_t n_in,
                           float* xr) {
  ctx.pool.parallel_for(n_tokens, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin * n_in; i < end * n_in; ++i) xr[i] = bf16_to_f32(f32_to_bf16(x[i]));
  });
}

// x rounded to bf16 into `out`, rows split over the pool.   x [n] f32, out [n] bf16
void round_activations(const Context& ctx, const float* x, int64_t n, uint16_t* out) {
  constexpr int64_t kGrain = 1 << 14;
  ctx.pool.parallel_for((n + kGrain - 1) / kGrain, [&](int64_t begin, int64_t end) {
    const int64_t i0 = begin * kGrain, i1 = std::min(n, end * kGrain);
#if defined(SHARDLM_CPU_BF16_DOT)
    if (ctx.isa >= Isa::kAvx512) {
      round_to_bf16_avx512(x + i0, i1 - i0, out + i0);
      return;
    }
#endif
    for (int64_t i = i0; i < i1; ++i) out[i] = f32_to_bf16(x[i]);
  });
}

// MatmulActivations::kBf16 for bf16 weights: x rounded once, then bf16 dot products (GEMV, and
// the GEMM without AMX), AMX with one part (GEMM), or the f32 kernels on the rounded values.
void matmul_bf16_activations(const Context& ctx, const float* x, int64_t n_tokens, int64_t n_in,
                             const uint16_t* w, int64_t n_out, const float* bias, float* y) {
  const int64_t n = n_tokens * n_in;
#if defined(SHARDLM_CPU_AMX)
  // Decode-sized with several tokens on AMX: the tile GEMV (weights in place as A tiles, the
  // tokens as B's columns), in 16-row blocks, so a row's arithmetic is the same whatever the
  // split or the thread count.
  if (n_tokens >= kAmxGemvMinTokens && n_tokens <= kGemvMaxTokens && !ctx.batch_invariant &&
      ctx.isa >= Isa::kAmx && amx_gemv_supported(n_in)) {
    auto* xb = static_cast<uint16_t*>(ctx.workspace.get(2 * n * sizeof(uint16_t), 1));
    round_activations(ctx, x, n, xb);
    const uint16_t* xt = xb;
    if (n_tokens > 1) {
      amx_gemv_pack_x(xb, n_tokens, n_in, xb + n);
      xt = xb + n;
    }
    gemv_chunks(
        ctx, n_out,
        [&](int64_t o_begin, int64_t o_end) {
          amx_gemv_rows(xt, n_tokens, n_in, w, o_begin, o_end, bias, y, n_out);
        },
        16);
    return;
  }
#endif
#if defined(SHARDLM_CPU_BF16_DOT)
  static const bool bf16_dot = bf16_dot_supported();
  if (n_tokens <= kGemvMaxTokens && bf16_dot && ctx.isa >= Isa::kAvx512) {
    uint16_t* xb = static_cast<uint16_t*>(ctx.workspace.get(n * sizeof(uint16_t), 1));
    round_activations(ctx, x, n, xb);
    gemv_chunks(ctx, n_out, [&](int64_t o_begin, int64_t o_end) {
      gemv_bf16_dot(xb, n_tokens, n_in, w, o_begin, o_end, bias, y, n_out);
    });
    return;
  }
  if (n_tokens > kGemvMaxTokens && bf16_dot && ctx.isa >= Isa::kAvx512 &&
      !amx_bf16_gemm(ctx, n_in, n_out)) {
    gemm_bf16_dot(ctx, x, n_tokens, n_in, w, DType::kBF16, n_out, bias, y);
    return;
  }
#endif
  // Round and widen back: the AMX GEMM with one part (it truncates, which keeps these values) and
  // the exact f32 kernels then form the same products as the VDPBF16PS GEMV.
  float* xr = static_cast<float*>(ctx.workspace.get(n * sizeof(float), 1));
  round_activations_f32(ctx, x, n_tokens, n_in, xr);
#if defined(SHARDLM_CPU_AMX)
  if (n_tokens > kGemvMaxTokens && amx_bf16_gemm(ctx, n_in, n_out)) {
    Context one_part = ctx;
    one_part.amx_splits = 1;
    gemm_amx(one_part, xr, n_tokens, n_in, w, DType::kBF16, n_out, bias, y);
    return;
  }
#endif
  matmul_f32_activations(ctx, xr, n_tokens, n_in, w, DType::kBF16, n_out, bias, y);
}

}  // namespace

void matmul(const Context& ctx, const float* x, int64_t n_tokens, int64_t n_in, const void* w,
            DType dtype, int64_t n_out, const float* bias, float* y) {
  if (n_tokens <= 0 || n_out <= 0) return;
#if defined(SHARDLM_CPU_AMX)
  // Quantized weights in the bf16 mode on AMX: prefill on the bf16 tile GEMM, each weight group
  // dequantized to bf16 as it is packed (the tiles multiply 16x faster than VNNI's int8 GEMM
  // here, which more than pays for the dequantization; decode keeps the quantized GEMVs).
  if (ctx.bf16_activations && is_quantized(dtype) && n_tokens > kGemvMaxTokens &&
      amx_gemm_for(ctx, dtype, n_in, n_out)) {
    float* xr = static_cast<float*>(ctx.workspace.get(n_tokens * n_in * sizeof(float), 1));
    round_activations_f32(ctx, x, n_tokens, n_in, xr);
    Context one_part = ctx;
    one_part.amx_splits = 1;
    gemm_amx(one_part, xr, n_tokens, n_in, w, dtype, n_out, bias, y);
    return;
  }
#endif
#if defined(SHARDLM_CPU_INT8_DOT)
  // Quantized weights in the bf16 mode on VNNI machines: prefill on the int8 GEMM (activations
  // quantized to int8 as in decode; VPDPBUSD does twice VDPBF16PS's products per instruction).
  static const bool int8_dot = int8_dot_supported();
  if (ctx.bf16_activations && is_quantized(dtype) && n_tokens > kGemvMaxTokens && int8_dot &&
      ctx.isa >= Isa::kAvx512) {
    gemm_int8(ctx, x, n_tokens, n_in, static_cast<const uint8_t*>(w), dtype, n_out, bias, y);
    return;
  }
#endif
#if defined(SHARDLM_CPU_BF16_DOT)
  // Quantized weights in the bf16 mode: prefill on VDPBF16PS over dequantized bf16 panels (decode
  // keeps the quantized GEMVs, which read fewer bytes).
  static const bool bf16_dot = bf16_dot_supported();
  if (ctx.bf16_activations && is_quantized(dtype) && n_tokens > kGemvMaxTokens && bf16_dot &&
      ctx.isa >= Isa::kAvx512) {
    gemm_bf16_dot(ctx, x, n_tokens, n_in, w, dtype, n_out, bias, y);
    return;
  }
#endif
  if (ctx.bf16_activations && dtype == DType::kBF16) {
    matmul_bf16_activations(ctx, x, n_tokens, n_in, static_cast<const uint16_t*>(w), n_out, bias,
                            y);
    return;
  }
  matmul_f32_activations(ctx, x, n_tokens, n_in, w, dtype, n_out, bias, y);
}

}  // namespace shardlm::cpu
