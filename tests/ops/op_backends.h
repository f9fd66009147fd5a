// The backend instances the op-test harness runs every case on: every backend of
// builtin_backends(), expanded where one backend has several code paths worth testing (the
// CPU's ISA levels, thread counts, deterministic and bf16-activation modes; the Vulkan
// backend's fallback paths), and where each instance comes from when a test needs it.
// Not the cases and not the comparison (op_harness.h).
#pragma once

#include <string>
#include <vector>

#include "runtime/backend/backend.h"
#include "tests/ops/op_harness.h"

namespace shardlm::ops_test {

// Every instance of this build on this machine. Listed without creating any backend: an
// instance whose device is missing is still listed (its tests skip or fail, see below).
std::vector<BackendInstance> backend_instances();

// The backend of `instance`, created on first use and shared by every case of this process
// (until release_backends()). Null when there is none; then *skip says why when the test must
// be skipped (cuda without a GPU; vulkan without a device when SHARDLM_VULKAN_TESTS=
// skip-without-device), and *failure says why when it must fail (any other creation error,
// e.g. vulkan without a device on a machine that should have lavapipe).
Backend* instance_backend(const BackendInstance& instance, std::string* skip, std::string* failure);

// Destroys the shared backends (at the end of the suite, before static destruction).
void release_backends();

}  // namespace shardlm::ops_test
