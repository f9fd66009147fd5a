// Stream: queued ops, command-buffer cache keyed by the op list's shape, submission, timestamps.
#include "runtime/backend/vulkan/vk_stream.h"

#include <chrono>

#include "runtime/core/status.h"

namespace shardlm::vk {

namespace {

constexpr uint8_t kDispatch = 0, kCopy = 1, kFill = 2;
constexpr uint64_t kWaitTimeoutNs = 600ull * 1000 * 1000 * 1000;  // a hung device, not a slow one

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

void barrier(const VkDeviceApi& fn, VkCommandBuffer cmd, VkPipelineStageFlags src_stage,
             VkAccessFlags src_access, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
  auto mb = make<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
  mb.srcAccessMask = src_access;
  mb.dstAccessMask = dst_access;
  fn.CmdPipelineBarrier(cmd, src_stage, dst_stage, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

constexpr VkPipelineStageFlags kWork =
    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
constexpr VkAccessFlags kWrites = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
constexpr VkAccessFlags kAll = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                               VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;

// Start of every command buffer: earlier submissions' device writes and the host's writes
// (parameter blocks, mapped uploads) before any read here.
void begin_barrier(const VkDeviceApi& fn, VkCommandBuffer cmd) {
  barrier(fn, cmd, kWork | VK_PIPELINE_STAGE_HOST_BIT, kWrites | VK_ACCESS_HOST_WRITE_BIT, kWork,
          kAll);
}
// End: device writes visible to host reads after the fence.
void end_barrier(const VkDeviceApi& fn, VkCommandBuffer cmd) {
  barrier(fn, cmd, kWork, kWrites, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
}

}  // namespace

bool Stream::Op::operator==(const Op& o) const {
  return kind == o.kind && pipeline == o.pipeline && groups[0] == o.groups[0] &&
         groups[1] == o.groups[1] && groups[2] == o.groups[2] && a == o.a && b == o.b && c == o.c &&
         d == o.d && e == o.e;
}

Stream::Stream(const Device& device, Pipelines& pipelines, const VulkanOptions& options)
    : device_(device), pipelines_(pipelines), options_(options) {
  const VkDeviceApi& fn = device.fn();
  arena_ = std::make_unique<Allocation>(device, options.arena_bytes, MemoryUse::kUpload, true,
                                        "parameter arena");
  auto pci = make<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = device.queue_family();
  check(fn.CreateCommandPool(device.handle(), &pci, nullptr, &pool_), "vkCreateCommandPool");
  auto fci = make<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
  check(fn.CreateFence(device.handle(), &fci, nullptr, &fence_), "vkCreateFence");
  scratch_cmd_ = new_command_buffer();
  if (device.timestamps()) {
    max_queries_ = 8192;
    auto qci = make<VkQueryPoolCreateInfo>(VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO);
    qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qci.queryCount = max_queries_;
    check(fn.CreateQueryPool(device.handle(), &qci, nullptr, &queries_), "vkCreateQueryPool");
  }
}

Stream::~Stream() {
  const VkDeviceApi& fn = device_.fn();
  fn.DeviceWaitIdle(device_.handle());
  if (queries_ != VK_NULL_HANDLE) fn.DestroyQueryPool(device_.handle(), queries_, nullptr);
  fn.DestroyFence(device_.handle(), fence_, nullptr);
  fn.DestroyCommandPool(device_.handle(), pool_, nullptr);  // frees every command buffer
}

VkCommandBuffer Stream::new_command_buffer() {
  auto ai = make<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  check(device_.fn().AllocateCommandBuffers(device_.handle(), &ai, &cmd),
        "vkAllocateCommandBuffers");
  return cmd;
}

void Stream::free_command_buffer(VkCommandBuffer cmd) {
  device_.fn().FreeCommandBuffers(device_.handle(), pool_, 1, &cmd);
}

Stream::ArenaSlice Stream::arena_alloc(size_t bytes) {
  bytes = (bytes + 15) & ~size_t{15};
  if (bytes > arena_->size()) {
    fail(StatusCode::kInternal, "vulkan: " + std::to_string(bytes) +
                                    " bytes of op parameters exceed the arena of " +
                                    std::to_string(arena_->size()));
  }
  if (arena_used_ + bytes > arena_->size()) flush();
  ArenaSlice s{arena_->mapped() + arena_used_, arena_->address() + arena_used_, arena_used_};
  arena_used_ += bytes;
  return s;
}

void Stream::dispatch(const std::string& variant, uint32_t gx, uint32_t gy, uint32_t gz,
                      const ArenaSlice& params) {
  if (gx == 0 || gy == 0 || gz == 0) return;
  Op op;
  op.kind = kDispatch;
  op.pipeline = pipelines_.get(variant);
  op.groups[0] = gx;
  op.groups[1] = gy;
  op.groups[2] = gz;
  op.a = params.offset;
  ops_.push_back(op);
  op_names_.push_back(variant);
  ++stats_.ops;
}

void Stream::copy(VkBuffer src, size_t src_offset, VkBuffer dst, size_t dst_offset, size_t bytes) {
  if (bytes == 0) return;
  Op op;
  op.kind = kCopy;
  op.a = reinterpret_cast<uint64_t>(src);
  op.b = src_offset;
  op.c = reinterpret_cast<uint64_t>(dst);
  op.d = dst_offset;
  op.e = bytes;
  ops_.push_back(op);
  op_names_.push_back("copy");
  ++stats_.ops;
}

void Stream::fill_zero(VkBuffer dst, size_t offset, size_t bytes) {
  if (bytes == 0) return;
  Op op;
  op.kind = kFill;
  op.a = reinterpret_cast<uint64_t>(dst);
  op.b = offset;
  op.c = bytes;
  ops_.push_back(op);
  op_names_.push_back("fill");
  ++stats_.ops;
}

void Stream::record(const std::vector<Op>& ops, bool profiled, VkCommandBuffer cmd) {
  const VkDeviceApi& fn = device_.fn();
  auto bi = make<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
  check(fn.BeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer");
  const uint32_t n_queries = profiled ? static_cast<uint32_t>(ops.size()) + 2 : 2;
  if (queries_ != VK_NULL_HANDLE) {
    fn.CmdResetQueryPool(cmd, queries_, 0, n_queries);
    fn.CmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, queries_, 0);
  }
  begin_barrier(fn, cmd);
  VkPipeline bound = VK_NULL_HANDLE;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (i > 0) barrier(fn, cmd, kWork, kWrites, kWork, kAll);
    if (op.kind == kDispatch) {
      if (op.pipeline != bound) {
        fn.CmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, op.pipeline);
        bound = op.pipeline;
      }
      const uint64_t addr = arena_->address() + op.a;
      fn.CmdPushConstants(cmd, pipelines_.layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof addr,
                          &addr);
      fn.CmdDispatch(cmd, op.groups[0], op.groups[1], op.groups[2]);
    } else if (op.kind == kCopy) {
      VkBufferCopy region{op.b, op.d, op.e};
      fn.CmdCopyBuffer(cmd, reinterpret_cast<VkBuffer>(op.a), reinterpret_cast<VkBuffer>(op.c), 1,
                       &region);
    } else {
      fn.CmdFillBuffer(cmd, reinterpret_cast<VkBuffer>(op.a), op.b, op.c, 0);
    }
    if (profiled && queries_ != VK_NULL_HANDLE) {
      fn.CmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_,
                           static_cast<uint32_t>(i + 1));
    }
  }
  end_barrier(fn, cmd);
  if (queries_ != VK_NULL_HANDLE) {
    fn.CmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_, n_queries - 1);
  }
  check(fn.EndCommandBuffer(cmd), "vkEndCommandBuffer");
}

void Stream::submit_and_wait(VkCommandBuffer cmd, size_t n_queries) {
  const VkDeviceApi& fn = device_.fn();
  auto si = make<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd;
  check(fn.QueueSubmit(device_.queue(), 1, &si, fence_), "vkQueueSubmit");
  const auto t0 = std::chrono::steady_clock::now();
  const VkResult r = fn.WaitForFences(device_.handle(), 1, &fence_, VK_TRUE, kWaitTimeoutNs);
  stats_.host_wait_s +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r == VK_TIMEOUT) fail(StatusCode::kBackend, "vulkan: the device did not finish in 600 s");
  check(r, "vkWaitForFences");
  check(fn.ResetFences(device_.handle(), 1, &fence_), "vkResetFences");
  if (n_queries > 0) collect_timestamps(n_queries);
}

void Stream::collect_timestamps(size_t n_queries) {
  std::vector<uint64_t> t(n_queries);
  const VkResult r = device_.fn().GetQueryPoolResults(
      device_.handle(), queries_, 0, static_cast<uint32_t>(n_queries), t.size() * sizeof(uint64_t),
      t.data(), sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r != VK_SUCCESS) return;  // timing is best effort
  const uint32_t bits = device_.timestamp_valid_bits();
  const uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
  const double period = device_.info().timestamp_period_ns;
  auto ns = [&](size_t i, size_t j) {
    return static_cast<uint64_t>(static_cast<double>((t[j] - t[i]) & mask) * period);
  };
  stats_.gpu_ns += ns(0, n_queries - 1);
  if (n_queries > 2 && n_queries == submitted_names_.size() + 2) {
    for (size_t i = 0; i < submitted_names_.size(); ++i)
      op_ns_[submitted_names_[i]] += ns(i, i + 1);
  }
}

void Stream::flush() {
  if (ops_.empty()) return;
  const bool profiled = profiling_ && ops_.size() + 2 <= max_queries_;
  const size_t n_queries = queries_ == VK_NULL_HANDLE ? 0 : (profiled ? ops_.size() + 2 : 2);
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  if (options_.reuse_command_buffers) {
    uint64_t h = profiled ? 1 : 0;
    for (const Op& op : ops_) {
      h = mix(h, op.kind);
      h = mix(h, reinterpret_cast<uint64_t>(op.pipeline));
      for (uint32_t g : op.groups) h = mix(h, g);
      for (uint64_t v : {op.a, op.b, op.c, op.d, op.e}) h = mix(h, v);
    }
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->hash == h && it->profiled == profiled && it->ops == ops_) {
        cache_.splice(cache_.begin(), cache_, it);
        cmd = it->cmd;
        ++stats_.replayed;
        break;
      }
    }
    if (cmd == VK_NULL_HANDLE) {
      cmd = new_command_buffer();
      try {
        record(ops_, profiled, cmd);
      } catch (...) {
        free_command_buffer(cmd);
        throw;
      }
      cache_.push_front(Recorded{ops_, profiled, h, cmd});
      ++stats_.recorded;
      while (cache_.size() > static_cast<size_t>(std::max(1, options_.command_cache_entries))) {
        free_command_buffer(cache_.back().cmd);
        cache_.pop_back();
      }
    }
  } else {
    cmd = scratch_cmd_;
    record(ops_, profiled, cmd);
    ++stats_.recorded;
  }
  submitted_names_.swap(op_names_);
  if (!profiled) submitted_names_.clear();
  ops_.clear();
  op_names_.clear();
  arena_used_ = 0;
  ++stats_.submits;
  submit_and_wait(cmd, n_queries);
}

void Stream::immediate_copy(VkBuffer src, size_t src_offset, VkBuffer dst, size_t dst_offset,
                            size_t bytes) {
  flush();
  if (bytes == 0) return;
  const VkDeviceApi& fn = device_.fn();
  auto bi = make<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(fn.BeginCommandBuffer(scratch_cmd_, &bi), "vkBeginCommandBuffer");
  begin_barrier(fn, scratch_cmd_);
  VkBufferCopy region{src_offset, dst_offset, bytes};
  fn.CmdCopyBuffer(scratch_cmd_, src, dst, 1, &region);
  end_barrier(fn, scratch_cmd_);
  check(fn.EndCommandBuffer(scratch_cmd_), "vkEndCommandBuffer");
  ++stats_.immediate;
  submitted_names_.clear();
  submit_and_wait(scratch_cmd_, 0);
}

void Stream::forget_buffer(VkBuffer buffer) {
  const uint64_t b = reinterpret_cast<uint64_t>(buffer);
  for (auto it = cache_.begin(); it != cache_.end();) {
    bool uses = false;
    for (const Op& op : it->ops) {
      if ((op.kind == kCopy && (op.a == b || op.c == b)) || (op.kind == kFill && op.a == b)) {
        uses = true;
        break;
      }
    }
    if (uses) {
      free_command_buffer(it->cmd);
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

void Stream::reset_stats() {
  stats_ = StreamStats{};
  op_ns_.clear();
}

}  // namespace shardlm::vk
