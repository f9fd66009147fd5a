// CudaBackend ops: the same shape checks as the cpu backend, then kernels/cuda launches (or
// cuBLAS for prefill GEMMs) on the rank's stream. Nothing here waits for the device except
// max_element, which reads back one (value, index) pair.
#include <algorithm>
#include <cstring>
#include <string>

#include "kernels/cuda/attention_plan.h"
#include "runtime/backend/cuda/cuda_backend_impl.h"
#include "runtime/core/status.h"

namespace shardlm {

namespace {

// Shape checks run on every op of every decode step: the message is only built on failure.
#define SHARDLM_CUDA_REQUIRE(ok, op, what)                                               \
  do {                                                                                   \
    if (!(ok)) fail(StatusCode::kInternal, std::string("cuda ") + (op) + ": " + (what)); \
  } while (0)

void check_f32(const Tensor& t, const char* op, const char* name) {
  SHARDLM_CUDA_REQUIRE(t.dtype == DType::kF32 && t.data != nullptr, op,
                       std::string(name) + " must be a non-null f32 tensor, got " + t.describe());
}

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kInt8:  // never here: quantized weights take the cuda::gemv_quantized path
    case DType::kInt4:
    case DType::kInt4G128:
    case DType::kF8E4M3:  // never here: the f8e4m3 KV cache is read by paged attention only
      break;
  }
  return CUDA_R_32F;
}

}  // namespace

void CudaBackend::flush_pending() {
  if (!pending_add_) return;
  pending_add_ = false;
  launch_add(pending_y_, pending_x_);
}

void CudaBackend::launch_add(const Tensor& y, const Tensor& x) {
  cuda::add(y.as<float>(), x.as<float>(), y.numel(), stream_);
}

cuda::I32Arg CudaBackend::i32_arg(std::span<const int32_t> values, Workspace w, I32Upload& cache) {
  cuda::I32Arg a;
  if (values.size() <= static_cast<size_t>(cuda::I32Arg::kInline)) {
    std::copy(values.begin(), values.end(), a.v);  // carried in the kernel parameters
    return a;
  }
  check_not_capturing("uploading more than 8 token ids or positions");
  const size_t bytes = values.size() * sizeof(int32_t);
  const bool same = cache.valid && cache.host.size() == values.size() &&
                    std::equal(values.begin(), values.end(), cache.host.begin());
  const bool had_room = scratch_[w].bytes >= bytes;
  void* dev = workspace(w, bytes);
  if (!same || !had_room) {
    // Pageable source: returns once staged. Ordered on the stream after earlier readers.
    cuda_check(cudaMemcpyAsync(dev, values.data(), bytes, cudaMemcpyHostToDevice, stream_),
               "uploading token ids / positions");
    cache.host.assign(values.begin(), values.end());
    cache.valid = true;
  }
  a.dev = static_cast<const int32_t*>(dev);
  return a;
}

void CudaBackend::embed(std::span<const int32_t> ids, const Tensor& table, int64_t vocab_start,
                        const Tensor& out) {
  Op op(*this);
  check_f32(out, "embed", "out");
  const int64_t n_tokens = static_cast<int64_t>(ids.size());
  SHARDLM_CUDA_REQUIRE(
      table.ndim == 2 && table.data != nullptr && out.numel() == n_tokens * table.dim(1), "embed",
      "table " + table.describe() + ", out " + out.describe());
  const cuda::I32Arg a = i32_arg(ids, kIds, ids_upload_);
  if (is_quantized(table.dtype)) {
    cuda::embed_quantized(a, n_tokens, table.data, table.dtype, table.dim(0), vocab_start,
                          table.dim(1), out.as<float>(), stream_);
    return;
  }
  cuda::embed(a, n_tokens, table.data, table.dtype, table.dim(0), vocab_start, table.dim(1),
              out.as<float>(), stream_);
}

void CudaBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out) {
  Op op(*this, /*keep_pending=*/true);
  check_f32(x, "rms_norm", "x");
  check_f32(w, "rms_norm", "w");
  check_f32(out, "rms_norm", "out");
  const int64_t n = w.numel();
  SHARDLM_CUDA_REQUIRE(n > 0 && x.numel() % n == 0 && out.numel() == x.numel(), "rms_norm",
                       "x " + x.describe() + ", w " + w.describe() + ", out " + out.describe());
  const float* residual = nullptr;
  if (pending_add_ && pending_y_.data == x.data && pending_y_.numel() == x.numel()) {
    residual = pending_x_.as<float>();  // x += residual, fused into the norm
    pending_add_ = false;
    ++stats_.fused_add_norms;
  } else {
    flush_pending();
  }
  cuda::rms_norm(x.as<float>(), residual, w.as<float>(), x.numel() / n, n, eps, out.as<float>(),
                 stream_);
}

void CudaBackend::matmul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) {
  Op op(*this);
  check_f32(x, "matmul", "x");
  check_f32(y, "matmul", "y");
  SHARDLM_CUDA_REQUIRE(w.ndim == 2 && w.data != nullptr, "matmul",
                       "w must be 2-D, got " + w.describe());
  const int64_t n_out = w.dim(0), n_in = w.dim(1);
  SHARDLM_CUDA_REQUIRE(n_in > 0 && x.numel() % n_in == 0, "matmul",
                       "x " + x.describe() + " vs w " + w.describe());
  const int64_t n_tokens = x.numel() / n_in;
  SHARDLM_CUDA_REQUIRE(y.numel() == n_tokens * n_out, "matmul",
                       "y " + y.describe() + " for x " + x.describe() + " @ w " + w.describe());
  if (bias.data != nullptr) {
    check_f32(bias, "matmul", "bias");
    SHARDLM_CUDA_REQUIRE(bias.numel() == n_out, "matmul",
                         "bias " + bias.describe() + " vs " + w.describe());
  }
  if (n_tokens == 0) return;
  if (is_quantized(w.dtype)) {  // every token count (no quantized cuBLAS path)
    SHARDLM_CUDA_REQUIRE(n_in % quant_scale_inputs(w.dtype) == 0, "matmul",
                         "quantized rows of whole scale groups, got " + w.describe());
    ++stats_.gemv_calls;
    cuda::gemv_quantized(x.as<float>(), n_tokens, n_in, w.data, w.dtype, n_out,
                         bias.data ? bias.as<float>() : nullptr, y.as<float>(), stream_);
    return;
  }
  if (n_tokens <= cuda::kDecodeMaxTokens) {
    ++stats_.gemv_calls;
    cuda::gemv(x.as<float>(), n_tokens, n_in, w.data, w.dtype, n_out,
               bias.data ? bias.as<float>() : nullptr, y.as<float>(), stream_);
  } else {
    ++stats_.gemm_calls;
    gemm(x, n_tokens, w, bias, y);
  }
}

// Prefill: y = x @ W^T with cuBLAS. Row-major y [T, N] is column-major N x T, so cuBLAS computes
// C (N x T) = op(A) op(B) with A = W seen as column-major K x N (transposed: op T) and
// B = x seen as column-major K x T. f32 weights: one f32 GEMM (no TF32). 16-bit weights: x is
// split into hi + lo of the weight's type and two tensor-core GEMMs accumulate into y in f32.
void CudaBackend::gemm(const Tensor& x, int64_t n_tokens, const Tensor& w, const Tensor& bias,
                       const Tensor& y) {
  const int64_t n_out = w.dim(0), n_in = w.dim(1);
  SHARDLM_CUDA_REQUIRE(n_out <= INT32_MAX && n_in <= INT32_MAX && n_tokens <= INT32_MAX, "matmul",
                       "dimensions beyond cuBLAS int range: " + w.describe());
  const int m = static_cast<int>(n_out), n = static_cast<int>(n_tokens), k = static_cast<int>(n_in);
  const float one = 1.0f, zero = 0.0f;
  if (w.dtype == DType::kF32) {
    cublas_->check(cublas_->gemm_ex(cublas_handle_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, w.data,
                                    CUDA_R_32F, k, x.data, CUDA_R_32F, k, &zero, y.data, CUDA_R_32F,
                                    m, CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT),
                   "cublasGemmEx (f32) " + w.describe());
  } else {
    const size_t half_bytes = static_cast<size_t>(n_tokens * n_in) * 2;
    void* hi = workspace(kGemmHi, half_bytes);
    void* lo = workspace(kGemmLo, half_bytes);
    cuda::split_hi_lo(x.as<float>(), n_tokens * n_in, w.dtype, hi, lo, stream_);
    const cudaDataType_t t = cuda_type(w.dtype);
    cublas_->check(cublas_->gemm_ex(cublas_handle_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, w.data,
                                    t, k, hi, t, k, &zero, y.data, CUDA_R_32F, m,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   std::string("cublasGemmEx (") + dtype_name(w.dtype) + ", hi) " + w.describe());
    cublas_->check(cublas_->gemm_ex(cublas_handle_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, w.data,
                                    t, k, lo, t, k, &one, y.data, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT),
                   std::string("cublasGemmEx (") + dtype_name(w.dtype) + ", lo) " + w.describe());
  }
  if (bias.data != nullptr) {
    cuda::add_bias(y.as<float>(), bias.as<float>(), n_tokens, n_out, stream_);
  }
}

void CudaBackend::rope(const Tensor& x, std::span<const int32_t> pos, const Tensor& inv_freq) {
  Op op(*this);
  check_f32(x, "rope", "x");
  check_f32(inv_freq, "rope", "inv_freq");
  SHARDLM_CUDA_REQUIRE(x.ndim == 3 && x.dim(0) == static_cast<int64_t>(pos.size()) &&
                           inv_freq.numel() * 2 == x.dim(2),
                       "rope", "x " + x.describe() + ", inv_freq " + inv_freq.describe());
  const cuda::I32Arg p = i32_arg(pos, kPos, pos_upload_);
  cuda::rope(x.as<float>(), x.dim(0), x.dim(1), x.dim(2), p, inv_freq.as<float>(), stream_);
}

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                            std::span<const int32_t> pos, int64_t sliding_window, float scale,
                            const Tensor& out) {
  Op op(*this);
  check_f32(q, "attention", "q");
  check_f32(k, "attention", "k");
  check_f32(v, "attention", "v");
  check_f32(out, "attention", "out");
  const int64_t n_tokens = static_cast<int64_t>(pos.size());
  SHARDLM_CUDA_REQUIRE(q.ndim == 3 && k.ndim == 3 && q.dim(0) == n_tokens && k.dim(2) == q.dim(2) &&
                           v.numel() == k.numel() && k.dim(1) > 0 && q.dim(1) % k.dim(1) == 0 &&
                           out.numel() == q.numel(),
                       "attention",
                       "q " + q.describe() + ", k " + k.describe() + ", out " + out.describe());
  SHARDLM_CUDA_REQUIRE(
      q.dim(2) <= cuda::kMaxHeadDim, "attention",
      "head_dim " + std::to_string(q.dim(2)) + " > " + std::to_string(cuda::kMaxHeadDim));
  int64_t max_keys = 0;
  for (int32_t p : pos) {
    SHARDLM_CUDA_REQUIRE(
        p >= 0 && p < k.dim(0), "attention",
        "position " + std::to_string(p) + " outside cache of " + std::to_string(k.dim(0)));
    const int64_t visible = sliding_window > 0 ? std::min<int64_t>(p + 1, sliding_window) : p + 1;
    max_keys = std::max(max_keys, visible);
  }
  if (n_tokens == 0) return;
  const int64_t n_kv = k.dim(0), n_head = q.dim(1), n_head_kv = k.dim(1), head_dim = q.dim(2);
  const cuda::AttentionPlan plan =
      cuda::plan_attention(n_tokens, n_head, n_head_kv, max_keys, info_.sm_count);
  const cuda::I32Arg p = i32_arg(pos, kPos, pos_upload_);
  if (plan.decode) {
    ++stats_.attention_decode_calls;
    // Sized for the most splits the plan ever picks, so a captured decode step never has to
    // grow it as the context (and the split count) grows.
    void* ws = workspace(kAttention, cuda::attention_decode_workspace_bytes(
                                         n_tokens, n_head, head_dim, cuda::kMaxDecodeSplits));
    cuda::attention_decode(q.as<float>(), k.as<float>(), v.as<float>(), p, n_tokens, n_kv, n_head,
                           n_head_kv, head_dim, sliding_window, scale, plan.n_splits, ws,
                           out.as<float>(), stream_);
  } else {
    ++stats_.attention_prefill_calls;
    cuda::attention_prefill(q.as<float>(), k.as<float>(), v.as<float>(), p, n_tokens, n_kv, n_head,
                            n_head_kv, head_dim, sliding_window, scale, out.as<float>(), stream_);
  }
}

void CudaBackend::swiglu(const Tensor& gate_up, const Tensor& out) {
  Op op(*this);
  check_f32(gate_up, "swiglu", "gate_up");
  check_f32(out, "swiglu", "out");
  SHARDLM_CUDA_REQUIRE(
      gate_up.ndim == 2 && gate_up.dim(1) % 2 == 0 && out.numel() == gate_up.numel() / 2, "swiglu",
      "gate_up " + gate_up.describe() + ", out " + out.describe());
  cuda::swiglu(gate_up.as<float>(), gate_up.dim(0), gate_up.dim(1) / 2, out.as<float>(), stream_);
}

void CudaBackend::add(const Tensor& y, const Tensor& x) {
  Op op(*this);  // launches an earlier pending add first
  check_f32(y, "add", "y");
  check_f32(x, "add", "x");
  SHARDLM_CUDA_REQUIRE(y.numel() == x.numel(), "add", "y " + y.describe() + ", x " + x.describe());
  // Deferred: when the next op is rms_norm(y), the add runs inside the norm kernel.
  pending_add_ = true;
  pending_y_ = y;
  pending_x_ = x;
}

void CudaBackend::copy_columns(const Tensor& src, int64_t col_begin, const Tensor& dst) {
  Op op(*this);
  check_f32(src, "copy_columns", "src");
  check_f32(dst, "copy_columns", "dst");
  const int64_t n_rows = src.rows();
  const int64_t n_src_cols = src.row_size();
  SHARDLM_CUDA_REQUIRE(n_rows > 0 && dst.numel() % n_rows == 0, "copy_columns",
                       "src " + src.describe() + ", dst " + dst.describe());
  const int64_t n_cols = dst.numel() / n_rows;
  SHARDLM_CUDA_REQUIRE(col_begin >= 0 && col_begin + n_cols <= n_src_cols, "copy_columns",
                       "columns [" + std::to_string(col_begin) + ", +" + std::to_string(n_cols) +
                           ") of " + src.describe());
  cuda::copy_columns(src.as<float>(), n_rows, n_src_cols, col_begin, n_cols, dst.as<float>(),
                     stream_);
}

Backend::MaxElement CudaBackend::max_element(const Tensor& x) {
  Op op(*this);
  check_not_capturing("max_element");
  check_f32(x, "max_element", "x");
  const int64_t n = x.numel();
  SHARDLM_CUDA_REQUIRE(n > 0, "max_element", "empty tensor " + x.describe());
  void* ws = workspace(kArgmax, cuda::argmax_workspace_bytes(1, n));
  auto* out = static_cast<uint8_t*>(workspace(kArgmaxOut, 16));
  auto* out_index = reinterpret_cast<int64_t*>(out);
  auto* out_value = reinterpret_cast<float*>(out + 8);
  cuda::argmax_rows(x.as<float>(), 1, n, 0.0f, 0, 0, ws, out_value, out_index, stream_);
  cuda_check(cudaMemcpyAsync(host_result_, out, 12, cudaMemcpyDeviceToHost, stream_),
             "max_element read-back");
  wait_stream();
  MaxElement r;
  std::memcpy(&r.index, host_result_, sizeof r.index);
  std::memcpy(&r.value, static_cast<uint8_t*>(host_result_) + 8, sizeof r.value);
  return r;
}

#undef SHARDLM_CUDA_REQUIRE

}  // namespace shardlm
