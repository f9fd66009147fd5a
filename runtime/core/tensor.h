// A non-owning view of a contiguous, row-major tensor: data pointer, dtype and up to 4 dims.
// The pointer may be host memory (CPU backend) or device memory (other backends); a Tensor never
// owns or frees it. Not an expression system: no strides, no broadcasting, no arithmetic.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "runtime/core/dtype.h"

namespace shardlm {

// Where a tensor's bytes live: host memory the CPU can read, or memory of a device backend (CUDA,
// Vulkan). Set by the backend that allocates it (Backend::allocate_tensor); collectives take it
// so communicators never guess from a pointer.
enum class MemorySpace : uint8_t { kHost, kDevice };

struct Tensor {
  static constexpr int kMaxDims = 4;

  void* data = nullptr;
  DType dtype = DType::kF32;
  std::array<int64_t, kMaxDims> shape{};  // only the first ndim entries are meaningful
  int ndim = 0;
  MemorySpace space = MemorySpace::kHost;

  Tensor() = default;
  Tensor(void* d, DType t, std::initializer_list<int64_t> dims);
  Tensor(const void* d, DType t, std::initializer_list<int64_t> dims);

  int64_t dim(int i) const { return shape[static_cast<size_t>(i < 0 ? ndim + i : i)]; }
  int64_t numel() const;
  // Bytes of the data (quantized types: rows of row_bytes(dtype, row_size())).
  size_t nbytes() const;
  // Elements in one row (product of all dims but the first); 1 for 1-D tensors... of size 1.
  int64_t row_size() const;
  int64_t rows() const { return ndim == 0 ? 0 : shape[0]; }

  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }

  // View of rows [begin, begin + count) along the first dim (contiguous, so just an offset).
  Tensor slice_rows(int64_t begin, int64_t count) const;
  // Same bytes seen with another shape; throws Error(kInternal) if the element count differs.
  Tensor reshaped(std::initializer_list<int64_t> dims) const;

  // "bf16[1024, 64]"
  std::string describe() const;
};

// Elements of a 1-D int32 host tensor of token ids / positions.
using TokenId = int32_t;

}  // namespace shardlm
