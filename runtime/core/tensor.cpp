// Tensor view helpers: element counts, row slicing, reshaping, descriptions.
#include "runtime/core/tensor.h"

#include "runtime/core/status.h"

namespace shardlm {

namespace {
void set_dims(Tensor& t, std::initializer_list<int64_t> dims) {
  if (dims.size() > Tensor::kMaxDims) fail(StatusCode::kInternal, "tensor with more than 4 dims");
  t.ndim = static_cast<int>(dims.size());
  size_t i = 0;
  for (int64_t d : dims) t.shape[i++] = d;
}
}  // namespace

Tensor::Tensor(void* d, DType t, std::initializer_list<int64_t> dims) : data(d), dtype(t) {
  set_dims(*this, dims);
}

Tensor::Tensor(const void* d, DType t, std::initializer_list<int64_t> dims)
    : Tensor(const_cast<void*>(d), t, dims) {}

int64_t Tensor::numel() const {
  if (ndim == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[static_cast<size_t>(i)];
  return n;
}

int64_t Tensor::row_size() const {
  int64_t n = 1;
  for (int i = 1; i < ndim; ++i) n *= shape[static_cast<size_t>(i)];
  return n;
}

size_t Tensor::nbytes() const {
  if (ndim < 2) return static_cast<size_t>(numel()) * dtype_size(dtype);
  return static_cast<size_t>(rows()) * row_bytes(dtype, row_size());
}

Tensor Tensor::slice_rows(int64_t begin, int64_t count) const {
  if (ndim == 0 || begin < 0 || count < 0 || begin + count > shape[0]) {
    fail(StatusCode::kInternal, "slice_rows [" + std::to_string(begin) + ", +" +
                                    std::to_string(count) + ") out of " + describe());
  }
  Tensor v = *this;
  v.data =
      static_cast<uint8_t*>(data) + static_cast<size_t>(begin) * row_bytes(dtype, row_size());
  v.shape[0] = count;
  return v;
}

Tensor Tensor::reshaped(std::initializer_list<int64_t> dims) const {
  Tensor v(data, dtype, dims);
  v.space = space;
  if (v.numel() != numel()) {
    fail(StatusCode::kInternal, "reshape of " + describe() + " to " + v.describe());
  }
  return v;
}

std::string Tensor::describe() const {
  std::string s = std::string(dtype_name(dtype)) + "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[static_cast<size_t>(i)]);
  }
  return s + "]";
}

}  // namespace shardlm
