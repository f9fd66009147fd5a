// The op-test harness's backend instances and their creation (see op_backends.h).
#include "tests/ops/op_backends.h"

#include <map>
#include <memory>

#include "kernels/cpu/isa.h"
#include "runtime/backend/registry.h"
#include "runtime/core/status.h"
#ifdef SHARDLM_HAVE_VULKAN
#include "runtime/backend/vulkan/vulkan_backend.h"
#include "tests/vulkan/vk_test_util.h"
#endif
#ifdef SHARDLM_HAVE_CUDA
#include "tests/cuda/cuda_test_util.h"
#endif

namespace shardlm::ops_test {

namespace {

// The ops whose CPU kernels split their work differently by thread count (row ranges, per-thread
// key ranges of split-K attention, token ranges); the others compute every element the same way
// on any number of threads and run at 3 threads only.
const std::vector<Op> kThreadSensitiveOps = {Op::kMatmul, Op::kAttention, Op::kStoreKv,
                                             Op::kPagedAttention};

BackendInstance cpu_instance(cpu::Isa isa, int threads, const std::string& mode) {
  BackendInstance in;
  const std::string isa_name = cpu::isa_name(isa);
  in.backend = "cpu";
  in.name = "cpu_" + isa_name + "_t" + std::to_string(threads) + (mode.empty() ? "" : "_" + mode);
  in.what = "cpu isa=" + isa_name + ", " + std::to_string(threads) + " threads";
  in.options.n_threads = threads;
  in.options.settings = {{"isa", isa_name}};
  in.options.activations = MatmulActivations::kF32;  // exact unless the mode says otherwise
  if (threads == 1) in.ops = kThreadSensitiveOps;
  if (mode == "det") {  // what deterministic mode changes: many-token matmuls, paged attention
    in.options.deterministic = true;
    in.what += ", deterministic";
    in.ops = {Op::kMatmul, Op::kPagedAttention};
  } else if (mode == "bf16act") {  // matmuls (of bf16 weights) and paged attention change
    in.options.activations = MatmulActivations::kBf16;
    in.what += ", bf16 activations";
    in.ops = {Op::kMatmul, Op::kPagedAttention};
  }
  return in;
}

// Every ISA level this machine runs at 3 threads, at 1 thread (the thread-sensitive ops) and in
// deterministic mode at 3 threads (matmuls of many tokens as GEMV groups, paged attention
// without split-K); bf16 activations (matmuls) at the best level.
void add_cpu_instances(std::vector<BackendInstance>& out) {
  const std::vector<cpu::Isa> isas = cpu::runnable_isas();
  for (cpu::Isa isa : isas) {
    out.push_back(cpu_instance(isa, 1, ""));
    out.push_back(cpu_instance(isa, 3, ""));
    out.push_back(cpu_instance(isa, 3, "det"));
  }
  out.push_back(cpu_instance(isas.back(), 3, "bf16act"));
}

#ifdef SHARDLM_HAVE_VULKAN
struct VulkanPaths {
  const char* name;
  bool subgroup, storage_16bit, host_visible, reuse;
  int attention_splits;  // -1 auto (1 on CPU devices such as lavapipe)
};

// The fallbacks a full-featured device (lavapipe) never picks by itself: reductions without
// subgroup ops, 32-bit-word weight loads, staged (never mapped) memory, re-recording every
// submission, split-K attention. The variants of tests/vulkan/ops_test.cpp (whose
// VariantUsesRequestedPaths checks that they get these paths); its "default" is 16bit_storage.
constexpr VulkanPaths kVulkanPaths[] = {
    {"16bit_storage", true, true, true, true, -1},
    {"no_subgroup_no_16bit_split3", false, false, true, true, 3},
    {"staged_memory_split16", true, false, false, true, 16},
    {"no_reuse_16bit_tree", false, true, true, false, 1},
};

BackendInstance vulkan_paths_instance(const VulkanPaths& p) {
  BackendInstance in;
  in.backend = "vulkan";
  in.name = std::string("vulkan_") + p.name;
  in.what = in.name;
  in.make = [p] {
    VulkanOptions o;
    o.device = test::vulkan_test_device();
    o.allow_subgroup_ops = p.subgroup;
    o.storage_16bit = p.storage_16bit ? 1 : 0;
    o.allow_host_visible = p.host_visible;
    o.reuse_command_buffers = p.reuse;
    o.attention_splits = p.attention_splits;
    return std::unique_ptr<Backend>(make_vulkan_backend(o));
  };
  return in;
}

// The registry's vulkan (its defaults: 16-bit storage off on CPU devices) and the path variants.
void add_vulkan_instances(std::vector<BackendInstance>& out) {
  BackendInstance in;
  in.backend = in.name = "vulkan";
  in.what = "vulkan (registry defaults)";
  in.options.devices = {test::vulkan_test_device()};
  out.push_back(in);
  for (const VulkanPaths& p : kVulkanPaths) out.push_back(vulkan_paths_instance(p));
}
#endif

// Why `instance` cannot run on this machine and its tests must skip, or "".
std::string skip_reason(const BackendInstance& instance) {
#ifdef SHARDLM_HAVE_CUDA
  if (instance.backend == "cuda") {
    std::string why;
    if (!test::have_cuda_device(&why)) return "no CUDA device: " + why;
  }
#endif
  (void)instance;
  return "";
}

// What a creation error means: a skip where the test setup allows it, else a failure.
void explain_creation_error(const BackendInstance& instance, const Error& e, std::string* skip,
                            std::string* failure) {
#ifdef SHARDLM_HAVE_VULKAN
  if (instance.backend == "vulkan") {
    if (test::vulkan_skip_allowed()) {
      *skip = std::string("no usable Vulkan device: ") + e.what();
    } else {
      *failure = std::string("no usable Vulkan device: ") + e.what() +
                 "\n(install lavapipe: apt-get install mesa-vulkan-drivers; or set "
                 "SHARDLM_VULKAN_TESTS=skip-without-device)";
    }
    return;
  }
#endif
  *failure = "creating " + instance.what + ": " + e.what();
}

struct Created {
  std::unique_ptr<Backend> backend;
  std::string skip, failure;
};

std::map<std::string, Created>& created() {
  static auto* m = new std::map<std::string, Created>();  // never destroyed: see release_backends
  return *m;
}

Created create(const BackendInstance& instance) {
  Created c;
  c.skip = skip_reason(instance);
  if (!c.skip.empty()) return c;
  try {
    c.backend = instance.make ? instance.make()
                              : builtin_backends().create(instance.backend, instance.options);
  } catch (const Error& e) {
    explain_creation_error(instance, e, &c.skip, &c.failure);
  }
  return c;
}

}  // namespace

std::vector<BackendInstance> backend_instances() {
  std::vector<BackendInstance> out;
  for (const std::string& name : builtin_backends().names()) {
    if (name == "cpu") {
      add_cpu_instances(out);
#ifdef SHARDLM_HAVE_VULKAN
    } else if (name == "vulkan") {
      add_vulkan_instances(out);
#endif
    } else {  // cuda, and any backend added later: its registry defaults
      BackendInstance in;
      in.backend = in.name = in.what = name;
      out.push_back(in);
    }
  }
  return out;
}

Backend* instance_backend(const BackendInstance& instance, std::string* skip,
                          std::string* failure) {
  auto it = created().find(instance.name);
  if (it == created().end()) it = created().emplace(instance.name, create(instance)).first;
  *skip = it->second.skip;
  *failure = it->second.failure;
  return it->second.backend.get();
}

void release_backends() {
  created().clear();
}

}  // namespace shardlm::ops_test
