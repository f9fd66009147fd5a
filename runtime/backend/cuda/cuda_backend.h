// The CUDA backend: one rank on one NVIDIA GPU (several ranks may share a GPU). Weights are
// uploaded from the mapped pack through pinned staging buffers (weight_upload.h); activations
// and the KV cache are f32 device memory; ops run eagerly on one stream through kernels/cuda
// (decode GEMVs, split-K decode attention, flash-style prefill attention, fused residual-add +
// RMSNorm) and cuBLAS (prefill GEMMs, bf16/f16 tensor cores on a hi/lo split of the f32
// activations, f32 accumulation). Allocations are held to a memory budget (memory_budget.h).
// Single-token decode steps are captured as CUDA graphs when the rank is alone (tp = 1), paged
// steps (store_kv / paged_attention) included: their host arrays reach the device through
// pinned staging copies recorded in the graph (cuda_paged_ops.cpp).
// Collectives: NCCL when every rank has its own GPU, the device-sharing communicator when
// ranks share one. Not a scheduler, and no host-side fallbacks: a failure is an Error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/backend/backend.h"
#include "runtime/backend/cuda/decode_graph.h"
#include "runtime/backend/cuda/weight_upload.h"

namespace shardlm {

// Throws Error(kBackend) "cuda backend: no usable CUDA device (<reason>)" when there is no
// driver or GPU, and Error(kOom) when options.planned_bytes does not fit the device budget.
// Settings (BackendOptions::settings; the variable is read when the setting is absent):
// graphs=1 (SHARDLM_CUDA_GRAPHS=1) turns decode graphs on (off by default: re-capture per step
// measured slower than eager launches); verbose=1
// (SHARDLM_CUDA_VERBOSE=1) prints each rank's load report (upload GB/s, memory) to stderr.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options);

// What a cuda backend did, for tests, benchmarks and load reports.
struct CudaBackendStats {
  std::string device;  // "0: NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)"
  int ranks_on_device = 1;
  std::string comm;  // "single", "nccl", "shared-device", or "" before make_communicator
  UploadStats upload;
  uint64_t budget_bytes = 0;
  uint64_t allocated_bytes = 0;  // now
  uint64_t peak_allocated_bytes = 0;
  bool graphs_enabled = false;
  GraphStats graphs;
  uint64_t gemv_calls = 0, gemm_calls = 0;  // matmuls by path
  uint64_t fused_add_norms = 0;             // residual adds folded into the next RMSNorm
  uint64_t attention_decode_calls = 0, attention_prefill_calls = 0;
  // Paged KV (the step engine): op calls, work items by path (decode rows of the split-K
  // kernel, prefill tiles), and paged_attention calls whose decode rows used > 1 key split.
  uint64_t store_kv_calls = 0, paged_attention_calls = 0;
  uint64_t paged_decode_rows = 0, paged_prefill_tiles = 0, paged_split_calls = 0;

  // "cuda 0: NVIDIA ... : uploaded 16.06 GB of weights in 5.21 s (3.08 GB/s) ..."
  std::string load_report() const;
};

// The stats of `backend` when it is a cuda backend, else nullptr.
const CudaBackendStats* cuda_backend_stats(const Backend& backend);

}  // namespace shardlm
