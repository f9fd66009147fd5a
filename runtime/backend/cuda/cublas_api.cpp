// CublasApi: dlopen + dlsym of the cuBLAS entry points.
#include "runtime/backend/cuda/cublas_api.h"

#include <dlfcn.h>

#include "runtime/core/status.h"

namespace shardlm {

namespace {

template <class Fn>
void load(void* lib, const char* symbol, const std::string& lib_name, Fn& out) {
  void* p = dlsym(lib, symbol);
  if (p == nullptr) {
    fail(StatusCode::kBackend, "cuda: " + lib_name + " has no symbol " + symbol);
  }
  out = reinterpret_cast<Fn>(p);
}

}  // namespace

CublasApi::CublasApi() {
  const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  lib_ = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib_ == nullptr) {
    const char* err = dlerror();
    fail(StatusCode::kBackend, "cuda: cannot load " + name + " (cuBLAS, needed for prefill " +
                                   "GEMMs): " + (err ? err : "unknown error"));
  }
  try {
    load(lib_, "cublasCreate_v2", name, create);
    load(lib_, "cublasDestroy_v2", name, destroy);
    load(lib_, "cublasSetStream_v2", name, set_stream);
    load(lib_, "cublasSetMathMode", name, set_math_mode);
    load(lib_, "cublasSetWorkspace_v2", name, set_workspace);
    load(lib_, "cublasGemmEx", name, gemm_ex);
    load(lib_, "cublasGetStatusString", name, status_string);
  } catch (...) {
    dlclose(lib_);
    throw;
  }
}

CublasApi::~CublasApi() {
  if (lib_ != nullptr) dlclose(lib_);
}

void CublasApi::check(cublasStatus_t s, const std::string& what) const {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  fail(StatusCode::kBackend, "cuda: " + what + ": " +
                                 (status_string ? status_string(s) : "cuBLAS error") + " (" +
                                 std::to_string(static_cast<int>(s)) + ")");
}

}  // namespace shardlm
