// Owned, aligned host memory (mimalloc). The one host allocator of the runtime: scratch
// activations, KV caches and weights that must be converted all come from here.
// Not a pool or arena: each buffer is one allocation, freed when the buffer dies.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shardlm {

inline constexpr size_t kHostAlignment = 64;  // one cache line; enough for AVX-512 loads

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Allocates `bytes` aligned to `alignment`; throws Error(kOom) naming the size when it fails.
  // The memory is zero-filled when `zero` is set.
  explicit AlignedBuffer(size_t bytes, size_t alignment = kHostAlignment, bool zero = false);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace shardlm
