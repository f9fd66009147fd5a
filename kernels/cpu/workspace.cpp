// Workspace: one growing aligned buffer.
#include "kernels/cpu/cpu_ops.h"

namespace shardlm::cpu {

void* Workspace::get(size_t bytes, int slot) {
  AlignedBuffer& b = buf_[slot == 0 ? 0 : 1];
  if (bytes > b.size()) b = AlignedBuffer(bytes + bytes / 4, kHostAlignment, false);
  return b.data();
}

}  // namespace shardlm::cpu
