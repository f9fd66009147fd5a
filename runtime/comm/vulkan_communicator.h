// The host-visible-memory communicator for Vulkan ranks. A collective on a device tensor
// flushes the rank's queued work, reaches the tensor through its host mapping (device memory
// that is host-visible: UMA GPUs, resizable BAR, lavapipe) or a staging copy, and lets the host
// communicator it wraps (threads of one process today) combine the ranks; staged results are
// copied back before the rank's next op. So tensor parallelism works across any Vulkan devices
// -- or N times on one device, as the tests run it -- where NCCL does not exist.
// Host buffers (MemorySpace::kHost) go to the host communicator unchanged.
// Not a device-side (GPU-to-GPU) transport: every collective costs a host round trip.
#pragma once

#include <cstddef>
#include <memory>

#include "runtime/comm/communicator.h"

namespace shardlm {

// How a communicator reaches a device's memory from the host (the Vulkan backend implements it).
class DeviceHostAccess {
 public:
  virtual ~DeviceHostAccess() = default;
  // Flushes queued work and returns a host pointer to `bytes` at device pointer `p`: the
  // mapping itself on host-visible memory, else a staging copy.
  virtual void* begin_host_access(void* p, size_t bytes) = 0;
  // Writes a staged copy back (when `modified`) before any later op.
  virtual void end_host_access(void* p, size_t bytes, bool modified) = 0;
  // Waits for all queued work.
  virtual void synchronize() = 0;
};

// `device` and `host` must outlive the communicator. Collective like `host`.
std::unique_ptr<Communicator> make_vulkan_communicator(DeviceHostAccess& device,
                                                       Communicator& host);

}  // namespace shardlm
