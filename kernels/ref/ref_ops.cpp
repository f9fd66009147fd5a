// Naive scalar implementations of kernels/ref/ref_ops.h.
#include "kernels/ref/ref_ops.h"

#include "runtime/core/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace shardlm::ref {

float load_weight(const void* w, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kF32:
      return static_cast<const float*>(w)[i];
    case DType::kF16:
      return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
    case DType::kBF16:
      return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
    case DType::kF8E4M3:  // KV rows
      return f8e4m3_to_f32(static_cast<const uint8_t*>(w)[i]);
    case DType::kInt8:
    case DType::kInt4:
    case DType::kInt4G128:
      break;  // quantized rows: dequantized whole first (dequantized())
  }
  return 0.0f;
}

// A quantized matrix [n_rows, n] as f32 (runtime/core/quant.h).
std::vector<float> dequantized(const void* w, DType dtype, int64_t n_rows, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n_rows * n));
  const size_t rb = row_bytes(dtype, n);
  for (int64_t r = 0; r < n_rows; ++r) {
    dequantize_row(dtype, static_cast<const uint8_t*>(w) + static_cast<size_t>(r) * rb, n,
                   out.data() + r * n);
  }
  return out;
}

void embed(const int32_t* ids, int64_t n_tokens, const void* table, DType dtype,
           int64_t n_vocab_local, int64_t vocab_start, int64_t n_embd, float* out) {
  if (is_quantized(dtype)) {
    const std::vector<float> tf = dequantized(table, dtype, n_vocab_local, n_embd);
    embed(ids, n_tokens, tf.data(), DType::kF32, n_vocab_local, vocab_start, n_embd, out);
    return;
  }
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t row = static_cast<int64_t>(ids[t]) - vocab_start;
    for (int64_t i = 0; i < n_embd; ++i) {
      out[t * n_embd + i] =
          (row >= 0 && row < n_vocab_local) ? load_weight(table, dtype, row * n_embd + i) : 0.0f;
    }
  }
}

void rms_norm(const float* x, const float* w, int64_t n_rows, int64_t n, float eps, float* out) {
  for (int64_t r = 0; r < n_rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[r * n + i]) * x[r * n + i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = w[i] * (x[r * n + i] * inv);
  }
}

void matmul(const float* x, int64_t n_tokens, int64_t n_in, const void* w, DType dtype,
            int64_t n_out, const float* bias, float* y) {
  if (is_quantized(dtype)) {
    const std::vector<float> wf = dequantized(w, dtype, n_out, n_in);
    matmul(x, n_tokens, n_in, wf.data(), DType::kF32, n_out, bias, y);
    return;
  }
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t o = 0; o < n_out; ++o) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < n_in; ++i) {
        acc += static_cast<double>(x[t * n_in + i]) * load_weight(w, dtype, o * n_in + i);
      }
      y[t * n_out + o] = static_cast<float>(acc);
    }
  }
}

void matmul_int8_activations(const float* x, int64_t n_tokens, int64_t n_in, const void* w,
                             DType dtype, int64_t n_out, const float* bias, float* y) {
  const size_t rb = row_bytes(DType::kInt8, n_in);
  std::vector<uint8_t> xq(rb * static_cast<size_t>(n_tokens));
  std::vector<float> xd(static_cast<size_t>(n_tokens * n_in));
  for (int64_t t = 0; t < n_tokens; ++t) {  // activations stay in input order
    quantize_row_int8(x + t * n_in, n_in, xq.data() + t * rb);
    dequantize_row_int8(xq.data() + t * rb, n_in, xd.data() + t * n_in);
  }
  matmul(xd.data(), n_tokens, n_in, w, dtype, n_out, bias, y);
}

void matmul_bf16_activations(const float* x, int64_t n_tokens, int64_t n_in, const void* w,
                             DType dtype, int64_t n_out, const float* bias, float* y) {
  std::vector<float> xr(static_cast<size_t>(n_tokens * n_in));
  for (size_t i = 0; i < xr.size(); ++i) xr[i] = bf16_to_f32(f32_to_bf16(x[i]));
  if (is_quantized(dtype)) {
    std::vector<float> wr = dequantized(w, dtype, n_out, n_in);
    for (float& v : wr) v = bf16_to_f32(f32_to_bf16(v));
    matmul(xr.data(), n_tokens, n_in, wr.data(), DType::kF32, n_out, bias, y);
    return;
  }
  matmul(xr.data(), n_tokens, n_in, w, dtype, n_out, bias, y);
}

void rope(float* x, int64_t n_tokens, int64_t n_head, int64_t head_dim, const int32_t* pos,
          const float* inv_freq) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t h = 0; h < n_head; ++h) {
      float* v = x + (t * n_head + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(pos[t]) * inv_freq[i];
        const float c = static_cast<float>(std::cos(static_cast<double>(angle)));
        const float s = static_cast<float>(std::sin(static_cast<double>(angle)));
        const float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
  }
}

void attention(const float* q, const float* k, const float* v, const int32_t* pos, int64_t n_tokens,
               int64_t n_kv, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
               int64_t sliding_window, float scale, float* out) {
  const int64_t group = n_head / n_head_kv;
  std::vector<double> score(static_cast<size_t>(n_kv));
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t kvh = h / group;
      const float* qv = q + (t * n_head + h) * head_dim;
      double max_s = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n_kv; ++j) {
        const bool visible = j <= pos[t] && (sliding_window <= 0 || pos[t] - j < sliding_window);
        if (!visible) {
          score[j] = -std::numeric_limits<double>::infinity();
          continue;
        }
        double d = 0;
        const float* kv = k + (j * n_head_kv + kvh) * head_dim;
        for (int64_t i = 0; i < head_dim; ++i) d += static_cast<double>(qv[i]) * kv[i];
        score[j] = d * scale;
        if (score[j] > max_s) max_s = score[j];
      }
      double sum = 0;
      for (int64_t j = 0; j < n_kv; ++j) {
        score[j] = std::isinf(score[j]) ? 0.0 : std::exp(score[j] - max_s);
        sum += score[j];
      }
      float* o = out + (t * n_head + h) * head_dim;
      for (int64_t i = 0; i < head_dim; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < n_kv; ++j) {
          if (score[j] != 0.0) acc += score[j] * v[(j * n_head_kv + kvh) * head_dim + i];
        }
        o[i] = static_cast<float>(acc / sum);
      }
    }
  }
}

void swiglu(const float* gate_up, int64_t n_tokens, int64_t n_ff, float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < n_ff; ++i) {
      const double g = gate_up[t * 2 * n_ff + i];
      const double u = gate_up[t * 2 * n_ff + n_ff + i];
      out[t * n_ff + i] = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
    }
  }
}

void add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void copy_columns(const float* src, int64_t n_rows, int64_t n_src_cols, int64_t col_begin,
                  int64_t n_cols, float* dst) {
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t c = 0; c < n_cols; ++c) dst[r * n_cols + c] = src[r * n_src_cols + col_begin + c];
  }
}

int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

void store_kv(const float* k, const float* v, const int64_t* slots, int64_t n_tokens,
              int64_t n_head_kv, int64_t head_dim, DType kv_dtype, void* k_pool, void* v_pool) {
  const int64_t row = n_head_kv * head_dim;
  auto put = [&](void* pool, int64_t i, float x) {
    switch (kv_dtype) {
      case DType::kInt8:  // never here: the KV cache is a float type
      case DType::kInt4:
      case DType::kInt4G128:
      case DType::kF32:
        static_cast<float*>(pool)[i] = x;
        break;
      case DType::kF16:
        static_cast<uint16_t*>(pool)[i] = f32_to_f16(x);
        break;
      case DType::kBF16:
        static_cast<uint16_t*>(pool)[i] = f32_to_bf16(x);
        break;
      case DType::kF8E4M3:
        static_cast<uint8_t*>(pool)[i] = f32_to_f8e4m3(x);
        break;
    }
  };
  for (int64_t t = 0; t < n_tokens; ++t) {
    if (slots[t] < 0) continue;
    for (int64_t i = 0; i < row; ++i) {
      put(k_pool, slots[t] * row + i, k[t * row + i]);
      put(v_pool, slots[t] * row + i, v[t * row + i]);
    }
  }
}

namespace {

// paged_attention; bf16: queries and softmax numerators rounded to bf16 before their products.
void paged_attention_impl(const float* q, int64_t n_head, const PagedKvView& kv,
                          const StepLayoutView& layout, int64_t sliding_window, float scale,
                          bool bf16, float* out) {
  auto round = [&](float x) { return bf16 ? bf16_to_f32(f32_to_bf16(x)) : x; };
  const int64_t hd = kv.head_dim, n_head_kv = kv.n_head_kv, group = n_head / n_head_kv;
  std::vector<double> score;
  for (int64_t s = 0; s < layout.n_seqs; ++s) {
    const int32_t* bt = layout.block_table + s * layout.max_blocks;
    auto elem = [&](int64_t j, int64_t kvh, int64_t i) {  // element of position j's row
      const int64_t slot =
          static_cast<int64_t>(bt[j / kv.block_size]) * kv.block_size + j % kv.block_size;
      return (slot * n_head_kv + kvh) * hd + i;
    };
    for (int64_t t = layout.seq_starts[s]; t < layout.seq_starts[s + 1]; ++t) {
      const int64_t p = layout.pos[t];
      const int64_t lo = sliding_window > 0 ? std::max<int64_t>(0, p - sliding_window + 1) : 0;
      score.assign(static_cast<size_t>(p - lo + 1), 0.0);
      for (int64_t h = 0; h < n_head; ++h) {
        const int64_t kvh = h / group;
        const float* qv = q + (t * n_head + h) * hd;
        double max_s = -std::numeric_limits<double>::infinity();
        for (int64_t j = lo; j <= p; ++j) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) {
            d += static_cast<double>(round(qv[i])) * load_weight(kv.k, kv.dtype, elem(j, kvh, i));
          }
          score[j - lo] = d * scale;
          max_s = std::max(max_s, score[j - lo]);
        }
        double sum = 0;
        for (double& x : score) {
          x = std::exp(x - max_s);
          sum += x;  // the numerators as computed; only their products with V are rounded
          x = round(static_cast<float>(x));
        }
        float* o = out + (t * n_head + h) * hd;
        for (int64_t i = 0; i < hd; ++i) {
          double acc = 0;
          for (int64_t j = lo; j <= p; ++j) {
            acc += score[j - lo] * load_weight(kv.v, kv.dtype, elem(j, kvh, i));
          }
          o[i] = static_cast<float>(acc / sum);
        }
      }
    }
  }
}

}  // namespace

void paged_attention(const float* q, int64_t n_head, const PagedKvView& kv,
                     const StepLayoutView& layout, int64_t sliding_window, float scale,
                     bool /*deterministic*/, float* out) {
  paged_attention_impl(q, n_head, kv, layout, sliding_window, scale, false, out);
}

void paged_attention_bf16_activations(const float* q, int64_t n_head, const PagedKvView& kv,
                                      const StepLayoutView& layout, int64_t sliding_window,
                                      float scale, float* out) {
  paged_attention_impl(q, n_head, kv, layout, sliding_window, scale, true, out);
}

void gather_kv(const PagedKvView& kv, const int32_t* block_table_row, int64_t n_pos, float* k,
               float* v) {
  const int64_t row = kv.n_head_kv * kv.head_dim;
  for (int64_t j = 0; j < n_pos; ++j) {
    const int64_t slot = static_cast<int64_t>(block_table_row[j / kv.block_size]) * kv.block_size +
                         j % kv.block_size;
    for (int64_t i = 0; i < row; ++i) {
      k[j * row + i] = load_weight(kv.k, kv.dtype, slot * row + i);
      v[j * row + i] = load_weight(kv.v, kv.dtype, slot * row + i);
    }
  }
}

}  // namespace shardlm::ref
