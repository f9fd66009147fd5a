// StepBuilder: assembles one StepInput from per-sequence pieces (tokens at positions, the
// sequence's block table, rows that need logits), filling slot mapping, sequence starts, context
// lengths and the padded block-table rows. Used by the step engine and by the draft model's
// proposer, so the two build steps the same way. Not here: which tokens run (scheduler.h).
#pragma once

#include <cstdint>
#include <span>

#include "runtime/model/step_input.h"

namespace shardlm {

class StepBuilder {
 public:
  // max_blocks: the longest block table of the step (rows are padded to it with -1).
  StepBuilder(int64_t block_size, int64_t max_blocks);

  // A sequence's tokens follow, until end_sequence(). block_table: its blocks, in order.
  void begin_sequence(std::span<const int32_t> block_table);
  // Adds `token` at `position` (its K/V slot from the block table). Returns its row in the step.
  int32_t add_token(int32_t token, int64_t position);
  // Asks for the logits of step row `row` (rows must be asked in increasing order).
  void want_logits(int32_t row) { in_.logits_rows.push_back(row); }
  // context_len: positions the sequence's attention covers after this step.
  void end_sequence(int64_t context_len);

  int64_t n_tokens() const { return static_cast<int64_t>(in_.tokens.size()); }
  int64_t n_logits() const { return static_cast<int64_t>(in_.logits_rows.size()); }
  const StepInput& input() const { return in_; }

 private:
  int64_t block_size_;
  std::span<const int32_t> table_;
  StepInput in_;
};

}  // namespace shardlm
