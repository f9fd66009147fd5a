// The few cuBLAS entry points the cuda backend uses, loaded with dlopen when a cuda backend is
// created. Linking libcublas/libcublasLt (~600 MB) into every shardlm binary would add ~170 ms
// to each process start (every CPU test and tool) for a library only GPU runs use; loading it
// on demand also lets a build with CUDA run on a host without cuBLAS (the cuda backend then
// reports it cannot load the library). Not a general cuBLAS wrapper.
#pragma once

#include <cublas_v2.h>

#include <string>

namespace shardlm {

class CublasApi {
 public:
  // Loads libcublas.so.<CUBLAS_VER_MAJOR>. Throws Error(kBackend) naming the library and the
  // dlerror() text, or the missing symbol.
  CublasApi();
  ~CublasApi();
  CublasApi(const CublasApi&) = delete;
  CublasApi& operator=(const CublasApi&) = delete;

  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
  // The C entry point (the header also declares a C++ overload taking cudaDataType compute).
  using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                    int, const void*, const void*, cudaDataType, int, const void*,
                                    cudaDataType, int, const void*, void*, cudaDataType, int,
                                    cublasComputeType_t, cublasGemmAlgo_t);
  GemmEx gemm_ex = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;

  // Throws Error(kBackend) "<what>: <cuBLAS status>" unless s is CUBLAS_STATUS_SUCCESS.
  void check(cublasStatus_t s, const std::string& what) const;

 private:
  void* lib_ = nullptr;
};

}  // namespace shardlm
