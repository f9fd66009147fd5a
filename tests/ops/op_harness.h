// The op-test harness's vocabulary (tests/ops): the ops of the Backend interface, one configured
// backend instance under test, one op case, and OpRun -- what a case runs with: tensors moved
// through the backend's own allocate / import_weight / copy_from_host / copy_to_host, and result
// checks against kernels/ref under the tolerance table (op_tolerances.h).
// Not the cases (op_cases_*.cpp), not the list of instances (op_backends.cpp) and not the gtest
// suite (backend_ops_test.cpp). Checks record gtest failures; nothing here skips.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend/backend.h"

namespace shardlm::ops_test {

// Every op of the Backend interface.
enum class Op : uint8_t {
  kEmbed,
  kRmsNorm,
  kMatmul,
  kRope,
  kAttention,
  kStoreKv,
  kPagedAttention,
  kSwiglu,
  kAdd,
  kCopyColumns,
  kMaxElement,
};
const char* op_name(Op op);  // "embed", "rms_norm", ...

// One configured backend under test.
struct BackendInstance {
  std::string name;        // gtest-safe and unique: "cpu_avx2_t3", "vulkan_staged_memory_split16"
  std::string backend;     // its registry name: "cpu", "vulkan", "cuda", ...
  std::string what;        // for messages: "cpu isa=avx2, 3 threads, deterministic"
  BackendOptions options;  // what the registry's factory gets
  // Set when the registry cannot express the variant (the Vulkan code-path switches of
  // VulkanOptions); null: builtin_backends().create(backend, options).
  std::function<std::unique_ptr<Backend>()> make;
  // The ops this instance is run on; empty: every op. A variant that changes only some ops
  // (a mode, a thread count) runs only those, the others being its base instance's tests.
  std::vector<Op> ops;

  bool runs(Op op) const;
};

class OpRun;

// One op case: a name, the op it tests, and the body (inputs, ref, backend, checks).
struct OpCase {
  std::string name;  // gtest-safe and unique: "matmul_bf16_gemm"
  Op op;
  std::function<void(OpRun&)> run;
};

// What a result is compared under: the row of the tolerance table for (backend, op, dtype,
// n_tokens), and the number of accumulated products per output element (matmul: n_in).
struct CheckSpec {
  Op op;
  DType dtype = DType::kF32;  // the weight / KV dtype the op read
  int64_t n_tokens = 1;
  int64_t n_terms = 0;
};

// The device tensors of one case on one backend instance, and its checks. Destroys its
// buffers before the (shared, longer-lived) backend.
class OpRun {
 public:
  OpRun(Backend& backend, const BackendInstance& instance);
  ~OpRun();
  OpRun(const OpRun&) = delete;
  OpRun& operator=(const OpRun&) = delete;

  Backend& backend() { return backend_; }
  const BackendInstance& instance() const { return instance_; }
  // True when this instance's matmuls round the activations of bf16 weights to bf16, so the
  // oracle is ref::matmul_bf16_activations (other weight dtypes stay ref::matmul), and paged
  // attention rounds its queries and softmax numerators (ref::paged_attention_bf16_activations).
  bool bf16_activations() const;

  // An activation: a scratch tensor of `shape` filled with `values` (f32) or `bytes` (dtype).
  Tensor input(const std::vector<float>& values, std::initializer_list<int64_t> shape);
  Tensor input_bytes(const std::vector<uint8_t>& bytes, DType dtype,
                     std::initializer_list<int64_t> shape);
  // A weight: a host tensor of `bytes` made usable by the backend (import_weight; the host copy
  // is kept alive here for backends that use it in place).
  Tensor weight(const std::vector<uint8_t>& bytes, DType dtype,
                std::initializer_list<int64_t> shape);
  Tensor weight_f32(const std::vector<float>& values, std::initializer_list<int64_t> shape);
  // An f32 scratch tensor whose every element is NaN, so an element the op never writes fails.
  Tensor output(std::initializer_list<int64_t> shape);
  std::vector<float> read(const Tensor& t);
  std::vector<uint8_t> read_bytes(const Tensor& t);
  // Frees every tensor of this run (between the shapes of a case).
  void free_all();

  // |got - want| within the table's bound (NaN anywhere fails). `what` names the shape.
  void check(const CheckSpec& spec, const std::vector<float>& got, const std::vector<float>& want,
             const std::string& what);
  // Byte-identical (store_kv pools), naming the first element of `elem_size` bytes that differs.
  void check_bytes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                   size_t elem_size, const std::string& what);

 private:
  Backend& backend_;
  const BackendInstance& instance_;
  std::vector<std::unique_ptr<DeviceBuffer>> buffers_;
  std::deque<std::vector<uint8_t>> host_weights_;  // deque: element addresses never move
};

}  // namespace shardlm::ops_test
