// StepBuilder: per-sequence pieces -> one StepInput.
#include "runtime/engine/step_builder.h"

#include <algorithm>
#include <string>

#include "runtime/core/status.h"

namespace shardlm {

StepBuilder::StepBuilder(int64_t block_size, int64_t max_blocks) : block_size_(block_size) {
  in_.max_blocks = static_cast<int32_t>(std::max<int64_t>(1, max_blocks));
  in_.seq_starts.push_back(0);
}

void StepBuilder::begin_sequence(std::span<const int32_t> block_table) {
  if (static_cast<int64_t>(block_table.size()) > in_.max_blocks) {
    fail(StatusCode::kInternal, "step builder: a block table of " +
                                    std::to_string(block_table.size()) + " blocks exceeds the " +
                                    std::to_string(in_.max_blocks) + " the step was sized for");
  }
  table_ = block_table;
  const size_t row0 = in_.block_table.size();
  in_.block_table.resize(row0 + static_cast<size_t>(in_.max_blocks), -1);
  std::copy(block_table.begin(), block_table.end(),
            in_.block_table.begin() + static_cast<ptrdiff_t>(row0));
}

int32_t StepBuilder::add_token(int32_t token, int64_t position) {
  const size_t block = static_cast<size_t>(position / block_size_);
  if (block >= table_.size()) {
    fail(StatusCode::kInternal, "step builder: position " + std::to_string(position) +
                                    " is past the sequence's " + std::to_string(table_.size()) +
                                    " reserved blocks");
  }
  const int32_t row = static_cast<int32_t>(in_.tokens.size());
  in_.tokens.push_back(token);
  in_.positions.push_back(static_cast<int32_t>(position));
  in_.slot_mapping.push_back(static_cast<int64_t>(table_[block]) * block_size_ +
                             position % block_size_);
  return row;
}

void StepBuilder::end_sequence(int64_t context_len) {
  in_.seq_starts.push_back(static_cast<int32_t>(in_.tokens.size()));
  in_.context_lens.push_back(static_cast<int32_t>(context_len));
}

}  // namespace shardlm
