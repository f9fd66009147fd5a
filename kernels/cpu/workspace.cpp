// Workspace: one growing aligned buffer.
#include "kernels/cpu/cpu_ops.h"

namespace shardlm::cpu {

void* Workspace::get(size_t bytes) {
  if (bytes > buf_.size()) buf_ = AlignedBuffer(bytes + bytes / 4, kHostAlignment, false);
  return buf_.data();
}

}  // namespace shardlm::cpu
