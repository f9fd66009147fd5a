// The host-visible-memory communicator for Vulkan ranks. A collective on a device tensor
// flushes the rank's queued work, reaches the tensor through its host mapping (device memory
// that is host-visible: UMA GPUs, resizable BAR, lavapipe) or a staging copy, and lets the host
// communicator it wraps (threads of one process today) combine the ranks; staged results are
// copied back before the rank's next op. So tensor parallelism works across any Vulkan devices
// -- or N times on one device, as the tests run it -- where NCCL does not exist.
// Pointers that are not this backend's memory go to the host communicator unchanged.
// Not a device-side (GPU-to-GPU) transport: every collective costs a host round trip.
#pragma once

#include <memory>

#include "runtime/comm/communicator.h"

namespace shardlm {

class VulkanBackend;

// `backend` must outlive the communicator. Collective like `host`.
std::unique_ptr<Communicator> make_vulkan_communicator(VulkanBackend& backend,
                                                       std::unique_ptr<Communicator> host);

}  // namespace shardlm
