// The CudaBackend class, shared by the two files that implement it: cuda_backend.cpp
// (construction, memory, weight import, copies, communicators, graphs, waiting) and
// cuda_backend_ops.cpp (shape checks and kernel launches for each op) and cuda_paged_ops.cpp
// (store_kv and paged_attention, with the step-array uploads that stay valid under CUDA graph
// capture). Internal header.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_ops.h"
#include "runtime/backend/cuda/cublas_api.h"
#include "runtime/backend/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_device.h"
#include "runtime/backend/cuda/decode_graph.h"
#include "runtime/backend/cuda/device_allocator.h"
#include "runtime/backend/cuda/pinned_staging.h"
#include "runtime/backend/cuda/weight_upload.h"

namespace shardlm {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& options);
  ~CudaBackend() override;

  const char* name() const override { return "cuda"; }

  std::unique_ptr<DeviceBuffer> allocate(size_t bytes, MemoryKind kind) override;
  Tensor import_weight(const Tensor& host, std::unique_ptr<DeviceBuffer>& storage) override;
  bool uses_host_weights_in_place(DType) const override { return false; }
  uint64_t device_bytes_peak() const override;
  void copy_from_host(const Tensor& dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const Tensor& src, size_t bytes) override;
  void synchronize() override;

  MemorySpace memory_space() const override { return MemorySpace::kDevice; }
  std::unique_ptr<Communicator> make_communicator(Communicator& host) override;
  void begin_forward(int64_t n_tokens) override;
  void end_forward() override;
  MaxElement max_element(const Tensor& x) override;

  void embed(std::span<const int32_t> ids, const Tensor& table, int64_t vocab_start,
             const Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out) override;
  void matmul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y) override;
  void rope(const Tensor& x, std::span<const int32_t> pos, const Tensor& inv_freq) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, std::span<const int32_t> pos,
                 int64_t sliding_window, float scale, const Tensor& out) override;
  void swiglu(const Tensor& gate_up, const Tensor& out) override;
  void add(const Tensor& y, const Tensor& x) override;
  void copy_columns(const Tensor& src, int64_t col_begin, const Tensor& dst) override;
  void store_kv(const Tensor& k, const Tensor& v, std::span<const int64_t> slots,
                const Tensor& k_pool, const Tensor& v_pool) override;
  void paged_attention(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool,
                       const StepLayout& layout, int64_t sliding_window, float scale,
                       const Tensor& out) override;

  const CudaBackendStats& stats() const;
  // Launches a deferred residual add, if any (before anything else reads its output).
  void flush_pending();

 private:
  // Scratch the backend itself needs, grown on demand. A buffer that is replaced is retired
  // and freed at the next host synchronization (kernels queued earlier may still read it).
  enum Workspace {
    kIds,
    kPos,
    kAttention,
    kGemmHi,
    kGemmLo,
    kArgmax,
    kArgmaxOut,
    kSlots,      // store_kv: the step's slots
    kPagedStep,  // paged_attention: positions, block table and plan (cuda::PagedStep)
    kCount
  };
  struct Scratch {
    void* ptr = nullptr;
    size_t bytes = 0;
  };
  // Host copy of the last small int32 array uploaded to kIds / kPos (skips repeats: the
  // positions are the same for every layer of a forward).
  struct I32Upload {
    std::vector<int32_t> host;
    bool valid = false;
  };

  // What a device buffer of step arrays (kSlots, kPagedStep) holds: the bytes last copied
  // there, and the capture that recorded the copy (0: an eager copy, already queued).
  struct ArgUpload {
    std::vector<uint8_t> host;
    const void* dev = nullptr;
    uint64_t epoch = 0;
    bool valid = false;
  };
  // The last paged_attention layout (positions, seq starts, block table, shapes) with its
  // validated plan and the int32 image uploaded to kPagedStep; every layer of a step reuses it.
  struct PagedLayoutCache {
    std::vector<int32_t> positions, seq_starts, block_table;
    int64_t max_blocks = -1, block_size = -1, n_head = -1, n_head_kv = -1, window = -1;
    int64_t n_blocks = -1;
    cuda::PagedAttentionPlan plan;
    std::vector<int32_t> image;
    // Offsets (int32 elements) of the arrays in `image`.
    size_t off_pos = 0, off_bt = 0, off_dec_tok = 0, off_dec_seq = 0, off_tile_seq = 0,
           off_tile_first = 0, off_tile_end = 0;
    bool valid = false;
  };

  // RAII for every entry point: makes the device current, finishes the weight upload on the
  // first op (timing the load), and launches a deferred add unless `keep_pending`.
  class Op {
   public:
    Op(CudaBackend& b, bool keep_pending = false);

   private:
    CudaDeviceGuard guard_;
  };

  void* workspace(Workspace w, size_t bytes);
  void free_retired();
  cuda::I32Arg i32_arg(std::span<const int32_t> values, Workspace w, I32Upload& cache);
  // A device copy of `bytes` of host data in workspace `w`, valid for kernels queued after this
  // call, eager or captured (captured: copied from pinned staging when the graph runs).
  const void* upload_args(Workspace w, const void* src, size_t bytes, ArgUpload& cache);
  // Validates `layout` against the pools and plans it (cached while the layout repeats).
  const PagedLayoutCache& paged_layout(const StepLayout& layout, int64_t n_head, int64_t n_head_kv,
                                       int64_t sliding_window, int64_t n_slots);
  void wait_stream();
  void check_not_capturing(const char* what);
  void gemm(const Tensor& x, int64_t n_tokens, const Tensor& w, const Tensor& bias,
            const Tensor& y);
  void launch_add(const Tensor& y, const Tensor& x);

  BackendOptions options_;
  int device_ = 0;
  CudaDeviceInfo info_;
  int ranks_on_device_ = 1;
  std::shared_ptr<DeviceAllocator> allocator_;
  cudaStream_t stream_ = nullptr;
  cudaStream_t side_stream_ = nullptr;  // zero-fills while the main stream is being captured
  std::unique_ptr<CublasApi> cublas_;
  cublasHandle_t cublas_handle_ = nullptr;
  std::unique_ptr<WeightUploader> uploader_;  // while weights are being imported
  UploadStats uploaded_;                      // every finished load
  std::unique_ptr<DecodeGraph> graph_;
  bool graphs_option_ = true;    // setting graphs (SHARDLM_CUDA_GRAPHS) != 0
  bool verbose_ = false;         // setting verbose=1: print the load report to stderr
  bool graphs_allowed_ = false;  // the communicator is graph-safe (tp = 1)
  bool decode_warm_ = false;     // one eager decode step has run (graphs start after it)
  bool warming_ = false;
  Communicator* host_comm_ = nullptr;  // for waits that must notice another rank's failure

  bool pending_add_ = false;
  Tensor pending_y_, pending_x_;

  Scratch scratch_[kCount];
  std::vector<std::pair<void*, size_t>> retired_;
  I32Upload ids_upload_, pos_upload_;
  ArgUpload slots_upload_, paged_upload_;
  PagedLayoutCache paged_layout_;
  PinnedStaging staging_;        // host side of the copies recorded in a captured step
  uint64_t capture_epoch_ = 0;   // captures begun (ArgUpload::epoch)
  uint64_t landed_epoch_ = 0;    // the last capture whose graph was launched
  void* host_result_ = nullptr;  // pinned: max_element's (value, index)

  mutable CudaBackendStats stats_;
};

}  // namespace shardlm
