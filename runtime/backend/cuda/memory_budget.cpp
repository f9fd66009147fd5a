// DeviceMemoryBudget: the checks and their messages.
#include "runtime/backend/cuda/memory_budget.h"

#include <cstdio>

#include "formats/memory_plan.h"
#include "runtime/core/status.h"

namespace shardlm {

DeviceMemoryBudget::DeviceMemoryBudget(std::string device, uint64_t total_bytes,
                                       double mem_fraction, int ranks_sharing)
    : device_(std::move(device)),
      total_(total_bytes),
      fraction_(mem_fraction),
      sharing_(ranks_sharing) {
  if (!(mem_fraction > 0 && mem_fraction <= 1)) {
    fail(StatusCode::kInvalidArg,
         "memory fraction must be in (0, 1], got " + std::to_string(mem_fraction));
  }
  if (ranks_sharing < 1) {
    fail(StatusCode::kInvalidArg, "ranks sharing a device: " + std::to_string(ranks_sharing));
  }
  budget_ =
      static_cast<uint64_t>(static_cast<long double>(total_bytes) * mem_fraction / ranks_sharing);
}

std::string DeviceMemoryBudget::budget_terms() const {
  char frac[32];
  std::snprintf(frac, sizeof frac, "%.2f", fraction_);
  std::string s = format_bytes(total_) + " x " + frac;
  if (sharing_ > 1) s += " / " + std::to_string(sharing_) + " ranks on this device";
  return s;
}

void DeviceMemoryBudget::check_plan(uint64_t planned, uint64_t free_bytes) const {
  if (planned == 0) return;
  if (planned > budget_) {
    fail(StatusCode::kOom, device_ + ": this rank's memory plan needs " + format_bytes(planned) +
                               " (weights + workspace + KV) but its budget is " +
                               format_bytes(budget_) + " (" + budget_terms() +
                               "); lower --n-ctx, use more tensor-parallel ranks or devices, "
                               "or raise --mem-fraction");
  }
  const uint64_t share = free_bytes / static_cast<uint64_t>(sharing_);
  if (planned > share) {
    fail(StatusCode::kOom, device_ + ": this rank's memory plan needs " + format_bytes(planned) +
                               " but only " + format_bytes(free_bytes) + " of " +
                               format_bytes(total_) + " is free" +
                               (sharing_ > 1 ? " (" + format_bytes(share) + " per rank for " +
                                                   std::to_string(sharing_) + " ranks)"
                                             : std::string()) +
                               "; other processes hold the rest, or lower --n-ctx");
  }
}

void DeviceMemoryBudget::reserve(uint64_t bytes, const std::string& what) {
  if (used_ + bytes > budget_) {
    fail(StatusCode::kOom, device_ + ": allocating " + format_bytes(bytes) + " for " + what +
                               " would bring this rank to " + format_bytes(used_ + bytes) +
                               ", over its budget of " + format_bytes(budget_) + " (" +
                               budget_terms() + "); lower --n-ctx or raise --mem-fraction");
  }
  used_ += bytes;
  if (used_ > peak_) peak_ = used_;
}

void DeviceMemoryBudget::release(uint64_t bytes) {
  used_ = bytes > used_ ? 0 : used_ - bytes;
}

std::string DeviceMemoryBudget::malloc_failure(uint64_t bytes, const std::string& what,
                                               uint64_t free_bytes) const {
  return device_ + ": cudaMalloc of " + format_bytes(bytes) + " for " + what +
         " failed: out of memory with " + format_bytes(free_bytes) + " free of " +
         format_bytes(total_) + " (this rank holds " + format_bytes(used_) + ")";
}

}  // namespace shardlm
