// OpRun: a case's tensors on a backend under test and its checks against kernels/ref (see
// op_harness.h). Every device tensor goes through the backend's own memory calls.
#include "tests/ops/op_harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "tests/ops/op_tolerances.h"

namespace shardlm::ops_test {

const char* op_name(Op op) {
  switch (op) {
    case Op::kEmbed:
      return "embed";
    case Op::kRmsNorm:
      return "rms_norm";
    case Op::kMatmul:
      return "matmul";
    case Op::kRope:
      return "rope";
    case Op::kAttention:
      return "attention";
    case Op::kStoreKv:
      return "store_kv";
    case Op::kPagedAttention:
      return "paged_attention";
    case Op::kSwiglu:
      return "swiglu";
    case Op::kAdd:
      return "add";
    case Op::kCopyColumns:
      return "copy_columns";
    case Op::kMaxElement:
      return "max_element";
  }
  return "?";
}

bool BackendInstance::runs(Op op) const {
  return ops.empty() || std::find(ops.begin(), ops.end(), op) != ops.end();
}

OpRun::OpRun(Backend& backend, const BackendInstance& instance)
    : backend_(backend), instance_(instance) {}

OpRun::~OpRun() {
  try {
    if (!buffers_.empty()) backend_.synchronize();
  } catch (...) {  // the case already failed (an op threw); free what it left anyway
  }
  buffers_.clear();
  host_weights_.clear();
}

bool OpRun::bf16_activations() const {
  return instance_.options.activations == MatmulActivations::kBf16;
}

Tensor OpRun::input(const std::vector<float>& values, std::initializer_list<int64_t> shape) {
  std::vector<uint8_t> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return input_bytes(bytes, DType::kF32, shape);
}

Tensor OpRun::input_bytes(const std::vector<uint8_t>& bytes, DType dtype,
                          std::initializer_list<int64_t> shape) {
  buffers_.emplace_back();
  const Tensor t = backend_.allocate_tensor(dtype, shape, MemoryKind::kScratch, buffers_.back());
  EXPECT_EQ(t.nbytes(), bytes.size()) << "harness bug: bytes for " << t.describe();
  backend_.copy_from_host(t, bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

Tensor OpRun::weight(const std::vector<uint8_t>& bytes, DType dtype,
                     std::initializer_list<int64_t> shape) {
  const std::vector<uint8_t>& host = host_weights_.emplace_back(bytes);
  const Tensor host_tensor(static_cast<const void*>(host.data()), dtype, shape);
  EXPECT_EQ(host_tensor.nbytes(), host.size())
      << "harness bug: bytes for " << host_tensor.describe();
  buffers_.emplace_back();
  return backend_.import_weight(host_tensor, buffers_.back());
}

Tensor OpRun::weight_f32(const std::vector<float>& values, std::initializer_list<int64_t> shape) {
  std::vector<uint8_t> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return weight(bytes, DType::kF32, shape);
}

Tensor OpRun::output(std::initializer_list<int64_t> shape) {
  buffers_.emplace_back();
  const Tensor t =
      backend_.allocate_tensor(DType::kF32, shape, MemoryKind::kScratch, buffers_.back());
  const std::vector<float> nans(static_cast<size_t>(t.numel()),
                                std::numeric_limits<float>::quiet_NaN());
  backend_.copy_from_host(t, nans.data(), t.nbytes());
  return t;
}

std::vector<float> OpRun::read(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  backend_.copy_to_host(out.data(), t, out.size() * sizeof(float));
  return out;
}

std::vector<uint8_t> OpRun::read_bytes(const Tensor& t) {
  std::vector<uint8_t> out(t.nbytes());
  backend_.copy_to_host(out.data(), t, out.size());
  return out;
}

void OpRun::free_all() {
  if (!buffers_.empty()) backend_.synchronize();  // no queued op may still use them
  buffers_.clear();
  host_weights_.clear();
}

void OpRun::check(const CheckSpec& spec, const std::vector<float>& got,
                  const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const Tolerance tol =
      tolerance(instance_.backend, spec.op, spec.dtype, spec.n_tokens, bf16_activations());
  float max_want = 0, worst = -1;
  size_t worst_at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_want = std::max(max_want, std::fabs(want[i]));
    float d = std::fabs(got[i] - want[i]);
    if (std::isnan(d)) d = std::numeric_limits<float>::infinity();  // unwritten or NaN
    if (d > worst) {
      worst = d;
      worst_at = i;
    }
  }
  const float bound = tol.bound(max_want, spec.n_terms);
  if (want.empty() || worst <= bound) return;
  ADD_FAILURE() << instance_.what << ": " << op_name(spec.op) << " " << dtype_name(spec.dtype)
                << " " << what << ": max |got - want| = " << worst << " at element " << worst_at
                << " of " << want.size() << " (got " << got[worst_at] << ", want " << want[worst_at]
                << "), allowed " << bound << " (abs " << tol.abs << ", rel " << tol.rel
                << " x max|want| " << max_want << ", per term " << tol.per_term << " x "
                << spec.n_terms << ": " << tol.why << ")";
}

void OpRun::check_bytes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                        size_t elem_size, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  if (got == want) return;
  size_t i = 0;
  while (i + elem_size <= got.size() && std::memcmp(&got[i], &want[i], elem_size) == 0) {
    i += elem_size;
  }
  std::ostringstream bytes;
  bytes << std::hex;
  for (size_t b = 0; b < elem_size && i + b < got.size(); ++b) {
    bytes << " " << static_cast<int>(got[i + b]) << "/" << static_cast<int>(want[i + b]);
  }
  ADD_FAILURE() << instance_.what << ": " << what << ": element " << i / elem_size << " of "
                << got.size() / elem_size << " differs (got/want bytes:" << bytes.str() << ")";
}

}  // namespace shardlm::ops_test
