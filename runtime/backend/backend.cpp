// Backend helpers shared by every implementation.
#include "runtime/backend/backend.h"

namespace shardlm {

Tensor Backend::allocate_tensor(DType dtype, std::initializer_list<int64_t> shape, MemoryKind kind,
                                std::unique_ptr<DeviceBuffer>& owner) {
  Tensor t(static_cast<void*>(nullptr), dtype, shape);
  owner = allocate(t.nbytes(), kind);
  t.data = owner->data();
  return t;
}

}  // namespace shardlm
