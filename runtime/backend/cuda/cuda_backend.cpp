// CudaBackend: construction and device choice, budgeted memory, weight import through the
// staging uploader, host copies, communicator choice, decode graphs, abort-aware waits.
// The ops are in cuda_backend_ops.cpp.
#include "runtime/backend/cuda/cuda_backend.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "formats/memory_plan.h"
#include "runtime/backend/cuda/cuda_backend_impl.h"
#include "runtime/backend/cuda/device_assignment.h"
#include "runtime/comm/communicator.h"
#include "runtime/comm/cuda_shared_communicator.h"
#include "runtime/core/status.h"
#ifdef SHARDLM_HAVE_NCCL
#include "runtime/comm/nccl_communicator.h"
#endif

namespace shardlm {

namespace {

constexpr size_t kStagingChunk = 16u << 20;  // 16 MiB per pinned staging buffer
constexpr int kStagingBuffers = 4;
constexpr double kDefaultMemFraction = 0.9;

class CudaBuffer final : public DeviceBuffer {
 public:
  CudaBuffer(std::shared_ptr<DeviceAllocator> alloc, size_t bytes, const std::string& what)
      : alloc_(std::move(alloc)), bytes_(bytes), ptr_(alloc_->allocate(bytes, what)) {}
  ~CudaBuffer() override { alloc_->free(ptr_, bytes_); }
  void* data() const override { return ptr_; }
  size_t size() const override { return bytes_; }

 private:
  std::shared_ptr<DeviceAllocator> alloc_;
  size_t bytes_;
  void* ptr_;
};

}  // namespace

std::string CudaBackendStats::load_report() const {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "cuda %s: uploaded %s of weights (%llu tensors) in %.2f s (%.2f GB/s) through "
                "%d x %s pinned staging buffers; %s of %s budget in use",
                device.c_str(), format_bytes(upload.bytes).c_str(),
                static_cast<unsigned long long>(upload.tensors), upload.seconds, upload.gb_per_s(),
                kStagingBuffers, format_bytes(kStagingChunk).c_str(),
                format_bytes(allocated_bytes).c_str(), format_bytes(budget_bytes).c_str());
  return buf;
}

CudaBackend::Op::Op(CudaBackend& b, bool keep_pending) : guard_(b.device_) {
  if (b.uploader_) {
    b.uploader_->finish();  // one host sync after the load: ends the load clock
    // Keep the numbers, release the staging threads (pinned buffers went with finish()).
    const UploadStats u = b.uploader_->stats();
    b.uploaded_.bytes += u.bytes;
    b.uploaded_.tensors += u.tensors;
    b.uploaded_.seconds += u.seconds;
    b.uploader_.reset();
    if (b.verbose_) std::fprintf(stderr, "shardlm %s\n", b.stats().load_report().c_str());
  }
  if (!keep_pending) b.flush_pending();
}

CudaBackend::CudaBackend(const BackendOptions& options) : options_(options) {
  check_backend_settings(options, "cuda", {"graphs", "verbose"});
  std::string why;
  const int n_visible = cuda_device_count(&why);
  if (n_visible == 0)
    fail(StatusCode::kBackend, "cuda backend: no usable CUDA device (" + why + ")");
  if (options.rank < 0 || options.rank >= options.n_ranks) {
    fail(StatusCode::kInvalidArg, "cuda backend: rank " + std::to_string(options.rank) + " of " +
                                      std::to_string(options.n_ranks));
  }
  const std::vector<int> devices = assign_devices(options.n_ranks, options.devices, n_visible);
  device_ = devices[static_cast<size_t>(options.rank)];
  ranks_on_device_ = ranks_on_same_device(devices, options.rank);
  // The rank's thread keeps this device current; entry points still guard it because the
  // engine may allocate (KV caches) or destroy from other threads.
  cuda_check(cudaSetDevice(device_), "cudaSetDevice(" + std::to_string(device_) + ")");
  info_ = cuda_device_info(device_);
  size_t free_bytes = 0, total_bytes = 0;
  cuda_check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  DeviceMemoryBudget budget("cuda device " + info_.describe(), total_bytes,
                            options.mem_fraction > 0 ? options.mem_fraction : kDefaultMemFraction,
                            ranks_on_device_);
  budget.check_plan(options.planned_bytes, free_bytes);
  allocator_ = std::make_shared<DeviceAllocator>(device_, std::move(budget));

  cublas_ = std::make_unique<CublasApi>();  // first: the likeliest to fail on a bare host
  cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  cuda_check(cudaHostAlloc(&host_result_, 16, cudaHostAllocDefault), "pinned result buffer");
  cublas_->check(cublas_->create(&cublas_handle_), "cublasCreate");
  cublas_->check(cublas_->set_stream(cublas_handle_, stream_), "cublasSetStream");
  // f32 accumulation everywhere: no TF32, no reduced-precision split-K reductions.
  cublas_->check(cublas_->set_math_mode(
                     cublas_handle_,
                     static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                               CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
                 "cublasSetMathMode");
  graph_ = std::make_unique<DecodeGraph>(stream_);
  // Off by default: re-capturing the step every time cost more than the launches it saves
  // (Llama-3-8B shape on an H200: 165.6 tok/s with graphs, 183.7 without; docs/cuda.md).
  graphs_option_ = backend_flag(options, "graphs", "SHARDLM_CUDA_GRAPHS", false);
  verbose_ = backend_flag(options, "verbose", "SHARDLM_CUDA_VERBOSE", false);

  stats_.device = info_.describe();
  stats_.ranks_on_device = ranks_on_device_;
}

CudaBackend::~CudaBackend() {
  int previous = -1;
  cudaGetDevice(&previous);
  cudaSetDevice(device_);
  graph_.reset();  // abandons a capture left open by a failed step
  if (stream_) cudaStreamSynchronize(stream_);
  uploader_.reset();
  if (cublas_handle_) cublas_->destroy(cublas_handle_);
  cublas_.reset();
  for (Scratch& s : scratch_) allocator_->free(s.ptr, s.bytes);
  free_retired();
  if (host_result_) cudaFreeHost(host_result_);
  if (side_stream_) cudaStreamDestroy(side_stream_);
  if (stream_) cudaStreamDestroy(stream_);
  cudaGetLastError();
  if (previous >= 0 && previous != device_) cudaSetDevice(previous);
}

uint64_t CudaBackend::device_bytes_peak() const {
  return allocator_->peak_bytes();
}

const CudaBackendStats& CudaBackend::stats() const {
  stats_.budget_bytes = allocator_->budget_bytes();
  stats_.allocated_bytes = allocator_->used_bytes();
  stats_.peak_allocated_bytes = allocator_->peak_bytes();
  stats_.graphs_enabled = graphs_option_ && graphs_allowed_;
  stats_.graphs = graph_->stats();
  stats_.upload = uploaded_;
  return stats_;
}

// ---- memory ----

std::unique_ptr<DeviceBuffer> CudaBackend::allocate(size_t bytes, MemoryKind kind) {
  CudaDeviceGuard guard(device_);
  auto buf = std::make_unique<CudaBuffer>(
      allocator_, bytes, kind == MemoryKind::kWeights ? "weights" : "scratch (activations/KV)");
  if (kind == MemoryKind::kScratch && bytes > 0) {
    if (graph_->capturing()) {  // never record a memset into the decode graph
      if (!side_stream_) {
        cuda_check(cudaStreamCreateWithFlags(&side_stream_, cudaStreamNonBlocking),
                   "cudaStreamCreate");
      }
      cuda_check(cudaMemsetAsync(buf->data(), 0, bytes, side_stream_), "zero-filling scratch");
      cuda_check(cudaStreamSynchronize(side_stream_), "zero-filling scratch");
    } else {
      cuda_check(cudaMemsetAsync(buf->data(), 0, bytes, stream_), "zero-filling scratch");
    }
  }
  return buf;
}

void* CudaBackend::workspace(Workspace w, size_t bytes) {
  Scratch& s = scratch_[w];
  if (s.bytes >= bytes) return s.ptr;
  if (s.ptr) retired_.emplace_back(s.ptr, s.bytes);
  const size_t grown = bytes + bytes / 4;  // headroom against regrowing every step
  s.ptr = allocator_->allocate(grown, "backend workspace");
  s.bytes = grown;
  return s.ptr;
}

void CudaBackend::free_retired() {
  for (auto& [p, n] : retired_) allocator_->free(p, n);
  retired_.clear();
}

Tensor CudaBackend::import_weight(const Tensor& host, std::unique_ptr<DeviceBuffer>& storage) {
  CudaDeviceGuard guard(device_);
  check_not_capturing("import_weight");
  if (host.data == nullptr) {
    fail(StatusCode::kInternal, "cuda import_weight: null host tensor " + host.describe());
  }
  const size_t bytes = host.nbytes();
  storage = std::make_unique<CudaBuffer>(allocator_, bytes, "weights");
  if (!uploader_) {  // a load starts: staging threads until the first op finishes it
    uploader_ =
        std::make_unique<WeightUploader>(kStagingChunk, kStagingBuffers, options_.n_threads);
  }
  uploader_->upload(storage->data(), host.data, bytes);
  Tensor dev = host;
  dev.data = storage->data();
  return dev;
}

void CudaBackend::copy_from_host(const Tensor& dst, const void* src, size_t bytes) {
  Op op(*this);
  check_not_capturing("copy_from_host");
  if (bytes > dst.nbytes()) {
    fail(StatusCode::kInternal, "cuda copy_from_host: too many bytes for " + dst.describe());
  }
  // From pageable memory the call returns once `src` is staged, so the caller may reuse it.
  if (bytes) {
    cuda_check(cudaMemcpyAsync(dst.data, src, bytes, cudaMemcpyHostToDevice, stream_),
               "copy_from_host");
  }
}

void CudaBackend::copy_to_host(void* dst, const Tensor& src, size_t bytes) {
  Op op(*this);
  check_not_capturing("copy_to_host");
  if (bytes > src.nbytes()) {
    fail(StatusCode::kInternal, "cuda copy_to_host: too many bytes for " + src.describe());
  }
  wait_stream();  // first, so a failed peer rank is noticed instead of blocking in the copy
  if (bytes) {
    cuda_check(cudaMemcpyAsync(dst, src.data, bytes, cudaMemcpyDeviceToHost, stream_),
               "copy_to_host");
    cuda_check(cudaStreamSynchronize(stream_), "copy_to_host");
  }
}

void CudaBackend::synchronize() {
  Op op(*this);
  check_not_capturing("synchronize");
  wait_stream();
}

void CudaBackend::wait_stream() {
  if (host_comm_ == nullptr) {
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  } else {
    for (;;) {  // poll, so a failure on another rank (which will never join) ends the wait
      const cudaError_t e = cudaStreamQuery(stream_);
      if (e == cudaSuccess) break;
      if (e != cudaErrorNotReady) cuda_check(e, "cudaStreamQuery");
      if (host_comm_->aborted()) {
        fail(StatusCode::kComm, "cuda rank on device " + std::to_string(device_) +
                                    ": stopped waiting for the device because another rank "
                                    "failed");
      }
      std::this_thread::yield();
    }
  }
  free_retired();
}

void CudaBackend::check_not_capturing(const char* what) {
  if (graph_ && graph_->capturing()) {
    graph_->abandon();
    fail(StatusCode::kInternal, std::string("cuda: ") + what +
                                    " inside a captured decode step (between "
                                    "begin_forward and end_forward)");
  }
}

// ---- communicators ----

std::unique_ptr<Communicator> CudaBackend::make_communicator(Communicator& host) {
  if (host.rank() != options_.rank || host.size() != options_.n_ranks) {
    fail(StatusCode::kInvalidArg, "cuda backend of rank " + std::to_string(options_.rank) + " of " +
                                      std::to_string(options_.n_ranks) +
                                      " asked for the communicator of rank " +
                                      std::to_string(host.rank()) + " of " +
                                      std::to_string(host.size()));
  }
  if (host.size() == 1) {
    stats_.comm = comm_kind_name(CudaCommKind::kSingle);
    graphs_allowed_ = true;
    return make_single_communicator();
  }
  // Every rank learns every rank's device.
  const int mine = device_;
  std::vector<int> devices(static_cast<size_t>(host.size()));
  host.all_gather(&mine, sizeof mine, devices.data(), devices.size() * sizeof(int));
#ifdef SHARDLM_HAVE_NCCL
  constexpr bool kHaveNccl = true;
#else
  constexpr bool kHaveNccl = false;
#endif
  // Ranks in separate processes cannot share device pointers: NCCL or nothing. (Their device
  // numbers are per machine, so equal numbers do not mean one device either.)
  if (host.spans_processes() && !kHaveNccl) {
    fail(StatusCode::kUnsupported,
         "cuda ranks as processes need the NCCL communicator; this build has no NCCL");
  }
  const CudaCommKind kind =
      host.spans_processes() ? CudaCommKind::kNccl : choose_comm_kind(devices, kHaveNccl);
  CudaCommContext ctx;
  ctx.device = device_;
  ctx.stream = stream_;
  ctx.flush = [this] {
    CudaDeviceGuard guard(device_);
    flush_pending();
  };
  host_comm_ = &host;
  stats_.comm = comm_kind_name(kind);
#ifdef SHARDLM_HAVE_NCCL
  if (kind == CudaCommKind::kNccl) return make_nccl_communicator(host, std::move(ctx));
#endif
  return make_cuda_shared_communicator(host, devices, std::move(ctx));
}

// ---- decode graphs ----

void CudaBackend::begin_forward(int64_t n_tokens) {
  if (!(graphs_option_ && graphs_allowed_) || n_tokens != 1) return;
  if (!decode_warm_) {  // the first decode step runs eagerly: workspaces are allocated outside
    warming_ = true;    // any capture
    return;
  }
  Op op(*this);
  staging_.reset();  // the previous graph has read its staged step arrays
  ++capture_epoch_;
  graph_->begin();
}

void CudaBackend::end_forward() {
  if (!graph_->capturing()) {
    if (warming_) decode_warm_ = true;
    warming_ = false;
    return;
  }
  CudaDeviceGuard guard(device_);
  try {
    flush_pending();
    graph_->end_and_launch();
    staging_.launched(stream_);
    landed_epoch_ = capture_epoch_;
  } catch (...) {
    graph_->abandon();
    throw;
  }
}

// ---- registry entry and stats ----

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

const CudaBackendStats* cuda_backend_stats(const Backend& backend) {
  const auto* cuda = dynamic_cast<const CudaBackend*>(&backend);
  return cuda ? &cuda->stats() : nullptr;
}

}  // namespace shardlm
