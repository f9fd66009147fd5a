// backend_ops_test: every op of the Backend interface on every backend instance of this build
// (op_backends.h: cpu at each ISA level, thread count and mode; vulkan and its fallback paths;
// cuda) against kernels/ref (op_cases.h), as one GoogleTest suite parameterized over
// (backend instance) x (op case): Ops/BackendOps.MatchesRef/<instance>__<case>.
//   one backend:  --gtest_filter='*/vulkan*'        one op:  --gtest_filter='*__matmul_*'
// A backend that does not support a case (Error kUnsupported) reports it SKIPPED with its
// message, never passed. A backend that cannot be created here skips (cuda without a GPU) or
// fails (vulkan without a device, unless SHARDLM_VULKAN_TESTS=skip-without-device).
// Not here: what one backend promises beyond op results (vulkan replay and streams, cuda graphs,
// fusion, launch paths and error messages: tests/vulkan, tests/cuda), the CPU kernels below the
// Backend interface (tests/runtime/kernels_test.cpp, paged_kernels_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/backend/registry.h"
#include "runtime/core/status.h"
#include "tests/ops/op_backends.h"
#include "tests/ops/op_cases.h"
#include "tests/ops/op_harness.h"

namespace shardlm::ops_test {

// gtest prints a failing test's parameters with these (found by ADL).
void PrintTo(const BackendInstance& b, std::ostream* os) {
  *os << b.what;
}
void PrintTo(const OpCase& c, std::ostream* os) {
  *os << c.name;
}

namespace {

std::vector<OpCase> all_cases() {
  std::vector<OpCase> c = dense_op_cases();
  std::vector<OpCase> paged = paged_op_cases();
  c.insert(c.end(), paged.begin(), paged.end());
  return c;
}

using Param = std::tuple<BackendInstance, OpCase>;

// Every (instance, case) pair whose op the instance runs.
std::vector<Param> all_params() {
  std::vector<Param> p;
  const std::vector<OpCase> cases = all_cases();
  for (const BackendInstance& b : backend_instances()) {
    for (const OpCase& c : cases) {
      if (b.runs(c.op)) p.emplace_back(b, c);
    }
  }
  return p;
}

class BackendOps : public ::testing::TestWithParam<Param> {
 protected:
  static void TearDownTestSuite() { release_backends(); }
};

TEST_P(BackendOps, MatchesRef) {
  const BackendInstance& instance = std::get<0>(GetParam());
  const OpCase& op_case = std::get<1>(GetParam());
  std::string skip, failure;
  Backend* backend = instance_backend(instance, &skip, &failure);
  if (!skip.empty()) GTEST_SKIP() << instance.name << ": " << skip;
  ASSERT_NE(backend, nullptr) << failure;
  OpRun run(*backend, instance);
  try {
    op_case.run(run);
  } catch (const Error& e) {
    if (e.code() != StatusCode::kUnsupported) {
      FAIL() << instance.what << ": " << op_case.name << " threw: " << e.what();
    }
    GTEST_SKIP() << instance.what << " does not support " << op_name(op_case.op) << " in "
                 << op_case.name << ": " << e.what();
  }
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::get<0>(info.param).name + "__" + std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Ops, BackendOps, ::testing::ValuesIn(all_params()), param_name);

// The harness itself: every backend of the build has instances, every op has cases, and the
// names are unique (they are the tests' names).
TEST(BackendOpsCoverage, EveryBuiltinBackendAndEveryOpIsCovered) {
  const std::vector<BackendInstance> instances = backend_instances();
  const std::vector<OpCase> cases = all_cases();
  for (int i = 0; i <= static_cast<int>(Op::kMaxElement); ++i) {
    const Op op = static_cast<Op>(i);
    EXPECT_TRUE(
        std::any_of(cases.begin(), cases.end(), [&](const OpCase& c) { return c.op == op; }))
        << "no case for op " << op_name(op);
    for (const std::string& name : builtin_backends().names()) {
      EXPECT_TRUE(
          std::any_of(instances.begin(), instances.end(),
                      [&](const BackendInstance& b) { return b.backend == name && b.runs(op); }))
          << "no instance of backend " << name << " runs " << op_name(op);
    }
  }
  std::set<std::string> names;
  for (const BackendInstance& b : instances) EXPECT_TRUE(names.insert(b.name).second) << b.name;
  for (const OpCase& c : cases) EXPECT_TRUE(names.insert(c.name).second) << c.name;
}

}  // namespace
}  // namespace shardlm::ops_test
