// DecodeGraph: capture, update-or-instantiate, launch.
#include "runtime/backend/cuda/decode_graph.h"

#include "kernels/cuda/cuda_device.h"

namespace shardlm {

DecodeGraph::~DecodeGraph() {
  abandon();
  if (exec_) cudaGraphExecDestroy(exec_);
}

void DecodeGraph::begin() {
  if (capturing_) abandon();
  cuda_check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed),
             "cudaStreamBeginCapture (decode graph)");
  capturing_ = true;
}

void DecodeGraph::end_and_launch() {
  cudaGraph_t graph = nullptr;
  capturing_ = false;
  cuda_check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture (decode graph)");
  bool updated = false;
  if (exec_) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(exec_, graph, &info) == cudaSuccess) {
      updated = true;
    } else {
      cudaGetLastError();  // the update failure is not sticky: instantiate afresh
      cudaGraphExecDestroy(exec_);
      exec_ = nullptr;
    }
  }
  if (!updated) {
    const cudaError_t e = cudaGraphInstantiate(&exec_, graph, 0);
    if (e != cudaSuccess) {
      exec_ = nullptr;
      cudaGraphDestroy(graph);
      cuda_check(e, "cudaGraphInstantiate (decode graph)");
    }
    ++stats_.instantiations;
  } else {
    ++stats_.updates;
  }
  cudaGraphDestroy(graph);
  cuda_check(cudaGraphLaunch(exec_, stream_), "cudaGraphLaunch (decode graph)");
  ++stats_.launches;
}

void DecodeGraph::abandon() noexcept {
  if (!capturing_) return;
  capturing_ = false;
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(stream_, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  cudaGetLastError();
}

}  // namespace shardlm
