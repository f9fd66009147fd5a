// The Vulkan backend's command stream: eager ops are queued (not recorded) as a list of
// dispatches and copies, each dispatch reading its parameters from a block the op wrote into
// a host-visible parameter arena; at a sync point (a readback, a collective, synchronize(), a
// full arena) the list is submitted as one command buffer and waited for.
//
// Record once, replay: a command buffer depends only on the op list's *shape* — pipelines,
// group counts, arena offsets of the parameter blocks, copy regions — never on tensor addresses,
// positions or token ids, which live in the parameter blocks and are rewritten every time. So
// when a submission's op list equals one recorded before (the next decode step, or the next
// layer's segment between two all-reduces), the cached command buffer is submitted again
// without re-recording. Timestamp queries bracket every submission (and every op when
// profiling), giving GPU time per submission and per op name.
// One in-flight submission at a time: every flush waits, so the arena can be reused at once.
// Not thread-safe: one rank thread owns one stream.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/backend/vulkan/vk_memory.h"
#include "runtime/backend/vulkan/vk_pipelines.h"

namespace shardlm::vk {

struct StreamStats {
  uint64_t ops = 0;        // dispatches + copies + fills queued
  uint64_t submits = 0;    // command buffers submitted (queued ops; not immediate copies)
  uint64_t recorded = 0;   // of those, freshly recorded
  uint64_t replayed = 0;   // of those, cached command buffers submitted again
  uint64_t immediate = 0;  // one-off staging copies (uploads / readbacks of large data)
  uint64_t gpu_ns = 0;     // GPU time of submissions, from timestamps (0 without them)
  double host_wait_s = 0;  // host time spent waiting for submissions
};

class Stream {
 public:
  Stream(const Device& device, Pipelines& pipelines, const VulkanOptions& options);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  struct ArenaSlice {
    uint8_t* host;         // where to write
    VkDeviceAddress addr;  // what shaders read
    size_t offset;         // offset in the arena buffer
  };
  // `bytes` (one op's parameter block plus its arrays, in one call) of arena space, 16-byte
  // aligned. Flushes first when the arena is full. Throws Error(kInternal) if bytes > capacity.
  ArenaSlice arena_alloc(size_t bytes);
  size_t arena_capacity() const { return arena_->size(); }
  VkBuffer arena_buffer() const { return arena_->buffer(); }

  void dispatch(const std::string& variant, uint32_t gx, uint32_t gy, uint32_t gz,
                const ArenaSlice& params);
  void copy(VkBuffer src, size_t src_offset, VkBuffer dst, size_t dst_offset, size_t bytes);
  void fill_zero(VkBuffer dst, size_t offset, size_t bytes);  // bytes % 4 == 0
  bool idle() const { return ops_.empty(); }

  // Submits the queued ops (replaying a cached command buffer when the list matches one) and
  // waits for them.
  void flush();
  // Copies now, outside the queue (flushes it first), through a one-off command buffer.
  void immediate_copy(VkBuffer src, size_t src_offset, VkBuffer dst, size_t dst_offset,
                      size_t bytes);

  // Forgets cached command buffers that refer to `buffer` (called before it is destroyed).
  void forget_buffer(VkBuffer buffer);

  // Per-op timestamps (when the device has timestamps): GPU ns summed by op name.
  void set_profiling(bool on) { profiling_ = on && device_.timestamps(); }
  bool profiling() const { return profiling_; }
  const std::map<std::string, uint64_t>& op_gpu_ns() const { return op_ns_; }
  const StreamStats& stats() const { return stats_; }
  void reset_stats();

 private:
  struct Op {
    uint8_t kind = 0;  // 0 dispatch, 1 copy, 2 fill
    VkPipeline pipeline = VK_NULL_HANDLE;
    uint32_t groups[3] = {0, 0, 0};
    uint64_t a = 0, b = 0, c = 0, d = 0, e = 0;  // dispatch: a = params offset; copy: src, src
                                                 // off, dst, dst off, size; fill: dst, off, size
    bool operator==(const Op& o) const;
  };
  struct Recorded {
    std::vector<Op> ops;
    bool profiled = false;
    uint64_t hash = 0;
    VkCommandBuffer cmd = VK_NULL_HANDLE;
  };
  void record(const std::vector<Op>& ops, bool profiled, VkCommandBuffer cmd);
  void submit_and_wait(VkCommandBuffer cmd, size_t n_queries);
  VkCommandBuffer new_command_buffer();
  void free_command_buffer(VkCommandBuffer cmd);
  void collect_timestamps(size_t n_queries);

  const Device& device_;
  Pipelines& pipelines_;
  VulkanOptions options_;
  std::unique_ptr<Allocation> arena_;
  size_t arena_used_ = 0;
  std::vector<Op> ops_;
  std::vector<std::string> op_names_;  // parallel to ops_
  std::list<Recorded> cache_;          // most recently used first
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer scratch_cmd_ = VK_NULL_HANDLE;  // immediate copies, non-reused recordings
  VkFence fence_ = VK_NULL_HANDLE;
  VkQueryPool queries_ = VK_NULL_HANDLE;
  uint32_t max_queries_ = 0;
  bool profiling_ = false;
  std::vector<std::string> submitted_names_;
  std::map<std::string, uint64_t> op_ns_;
  StreamStats stats_;
};

}  // namespace shardlm::vk
