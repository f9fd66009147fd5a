// AlignedBuffer on top of mimalloc's aligned allocation.
#include "runtime/core/aligned_buffer.h"

#include <mimalloc.h>

#include <cstring>
#include <string>
#include <utility>

#include "runtime/core/status.h"

namespace shardlm {

AlignedBuffer::AlignedBuffer(size_t bytes, size_t alignment, bool zero) : size_(bytes) {
  if (bytes == 0) return;
  data_ = zero ? mi_zalloc_aligned(bytes, alignment) : mi_malloc_aligned(bytes, alignment);
  if (data_ == nullptr) {
    fail(StatusCode::kOom, "cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  }
}

AlignedBuffer::~AlignedBuffer() {
  mi_free(data_);
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    mi_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace shardlm
