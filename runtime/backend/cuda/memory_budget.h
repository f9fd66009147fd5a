// The device-memory budget of one cuda rank: device_total * mem_fraction shared equally by
// the ranks on that device. Checked twice: up front against the rank's memory plan and the
// device's free memory (before any weight is uploaded), then on every allocation, so running
// out gives Error(kOom) with both numbers and a remedy instead of a failed cudaMalloc later.
// Pure bookkeeping (no CUDA calls): tested without a GPU.
#pragma once

#include <cstdint>
#include <string>

namespace shardlm {

class DeviceMemoryBudget {
 public:
  // `device` names the device in messages ("cuda device 0 (NVIDIA H100 80GB HBM3)").
  // Throws Error(kInvalidArg) for a fraction outside (0, 1] or sharing < 1.
  DeviceMemoryBudget(std::string device, uint64_t total_bytes, double mem_fraction,
                     int ranks_sharing);

  uint64_t budget() const { return budget_; }
  uint64_t used() const { return used_; }
  uint64_t peak() const { return peak_; }

  // Refuses a plan of `planned` bytes that exceeds the budget, or this rank's share of the
  // memory free right now (`free_bytes` / ranks sharing). No-op when planned is 0.
  void check_plan(uint64_t planned, uint64_t free_bytes) const;
  // Counts `bytes` about to be allocated for `what`; throws Error(kOom) when over budget.
  void reserve(uint64_t bytes, const std::string& what);
  void release(uint64_t bytes);
  // The message for a cudaMalloc that failed although the budget allowed it.
  std::string malloc_failure(uint64_t bytes, const std::string& what, uint64_t free_bytes) const;

 private:
  std::string budget_terms() const;  // "79.1 GiB x 0.90 / 2 ranks on this device"

  std::string device_;
  uint64_t total_;
  double fraction_;
  int sharing_;
  uint64_t budget_;
  uint64_t used_ = 0;
  uint64_t peak_ = 0;
};

}  // namespace shardlm
