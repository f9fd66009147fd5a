// Rank -> device assignment and the communicator choice.
#include "runtime/backend/cuda/device_assignment.h"

#include <algorithm>

#include "runtime/core/status.h"

namespace shardlm {

std::vector<int> assign_devices(int n_ranks, const std::vector<int>& devices, int n_visible) {
  if (n_ranks < 1) fail(StatusCode::kInvalidArg, "cuda: " + std::to_string(n_ranks) + " ranks");
  if (n_visible < 1) fail(StatusCode::kBackend, "cuda: no CUDA device is visible");
  for (int d : devices) {
    if (d < 0 || d >= n_visible) {
      fail(StatusCode::kInvalidArg, "cuda: device " + std::to_string(d) + " does not exist (" +
                                        std::to_string(n_visible) + " visible: 0.." +
                                        std::to_string(n_visible - 1) + ")");
    }
  }
  std::vector<int> out(static_cast<size_t>(n_ranks));
  for (int r = 0; r < n_ranks; ++r) {
    out[static_cast<size_t>(r)] =
        devices.empty() ? r % n_visible : devices[static_cast<size_t>(r) % devices.size()];
  }
  return out;
}

int ranks_on_same_device(const std::vector<int>& device_of_rank, int rank) {
  const int mine = device_of_rank.at(static_cast<size_t>(rank));
  return static_cast<int>(std::count(device_of_rank.begin(), device_of_rank.end(), mine));
}

const char* comm_kind_name(CudaCommKind kind) {
  switch (kind) {
    case CudaCommKind::kSingle:
      return "single";
    case CudaCommKind::kNccl:
      return "nccl";
    case CudaCommKind::kShared:
      return "shared-device";
  }
  return "?";
}

CudaCommKind choose_comm_kind(const std::vector<int>& device_of_rank, bool have_nccl) {
  if (device_of_rank.size() <= 1) return CudaCommKind::kSingle;
  std::vector<int> sorted = device_of_rank;
  std::sort(sorted.begin(), sorted.end());
  const bool distinct = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
  return distinct && have_nccl ? CudaCommKind::kNccl : CudaCommKind::kShared;
}

}  // namespace shardlm
