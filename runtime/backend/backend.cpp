// Backend helpers shared by every implementation.
#include "runtime/backend/backend.h"

#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/core/status.h"

namespace shardlm {

Tensor Backend::allocate_tensor(DType dtype, std::initializer_list<int64_t> shape, MemoryKind kind,
                                std::unique_ptr<DeviceBuffer>& owner) {
  Tensor t(static_cast<void*>(nullptr), dtype, shape);
  owner = allocate(t.nbytes(), kind);
  t.data = owner->data();
  return t;
}

std::unique_ptr<Communicator> Backend::make_communicator(ThreadGroup&, int) {
  return nullptr;
}

void Backend::begin_forward(int64_t) {}
void Backend::end_forward() {}

void Backend::store_kv(const Tensor&, const Tensor&, std::span<const int64_t>, const Tensor&,
                       const Tensor&) {
  fail(StatusCode::kUnsupported,
       std::string("the ") + name() + " backend has no paged KV cache yet; use --backend cpu");
}

void Backend::paged_attention(const Tensor&, const Tensor&, const Tensor&, const StepLayout&,
                              int64_t, float, const Tensor&) {
  fail(StatusCode::kUnsupported,
       std::string("the ") + name() + " backend has no paged attention yet; use --backend cpu");
}

Backend::MaxElement Backend::max_element(const Tensor& x) {
  if (x.dtype != DType::kF32 || x.data == nullptr) {
    fail(StatusCode::kInternal, std::string(name()) +
                                    " max_element: x must be a non-null f32 tensor, got " +
                                    x.describe());
  }
  std::vector<float> host(static_cast<size_t>(x.numel()));
  copy_to_host(host.data(), x, host.size() * sizeof(float));
  MaxElement best;
  for (size_t i = 0; i < host.size(); ++i) {  // strict >: ties keep the lowest index
    if (best.index < 0 || host[i] > best.value) best = {host[i], static_cast<int64_t>(i)};
  }
  return best;
}

}  // namespace shardlm
