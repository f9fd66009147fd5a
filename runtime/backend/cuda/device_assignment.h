// Which CUDA device each rank of an in-process tensor-parallel group runs on, how many ranks
// share a device, and which communicator joins them: NCCL when every rank has its own device
// (and NCCL is built), the device-sharing communicator otherwise (several ranks on one GPU, so
// TP = 2/4 is testable on a single GPU). Pure arithmetic: tested without a GPU.
#pragma once

#include <string>
#include <vector>

namespace shardlm {

// Rank r runs on devices[r % devices.size()], or on device r % n_visible when `devices` is
// empty. Throws Error(kInvalidArg) naming the index when a listed device does not exist, and
// Error(kBackend) when there is no device at all.
std::vector<int> assign_devices(int n_ranks, const std::vector<int>& devices, int n_visible);

// How many ranks of the group run on the same device as `rank`.
int ranks_on_same_device(const std::vector<int>& device_of_rank, int rank);

enum class CudaCommKind { kSingle, kNccl, kShared };
const char* comm_kind_name(CudaCommKind kind);  // "single", "nccl", "shared-device"

// kSingle for one rank; kNccl when all devices differ and NCCL is available; else kShared.
CudaCommKind choose_comm_kind(const std::vector<int>& device_of_rank, bool have_nccl);

}  // namespace shardlm
