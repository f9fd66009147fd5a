// The scheduler: continuous batching policy of the step engine. It keeps the waiting and running
// queues and, for every step, picks which sequences run and how many of their tokens:
//   1. running sequences that decode (one token each), oldest first;
//   2. running sequences part-way through their prompt (chunked prefill), oldest first;
//   3. waiting sequences, first come first served (preempted ones first), each admitted when
//      its blocks fit, with the longest cached prefix of its tokens taken from the prefix cache;
// until the step holds max_seqs sequences or max_batch_tokens tokens. Between 1 and 2, decodes
// that want speculative lookahead get it from what budget is left, oldest first, when their
// blocks can be reserved without preempting anyone (speculation never displaces work). When a running sequence
// needs a block and none is free, the newest running sequence is preempted: its blocks are
// freed, it goes back to the front of the waiting queue and is recomputed later from its tokens
// (prompt and everything generated), so its output does not change. In kGuaranteed admission a
// sequence is admitted only when the blocks for its whole budget (prompt + max_new_tokens) are
// free beyond what the running ones may still need, so nothing is ever preempted (TensorRT-LLM's
// default policy). Knows nothing of backends, models or sampling: only token counts and blocks.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "runtime/engine/block_manager.h"

namespace shardlm {

enum class AdmissionMode : int32_t {
  kPreempt = 0,     // admit while blocks are free now; preempt the newest when they run out
  kGuaranteed = 1,  // admit only what is sure to finish; never preempt
};

struct SchedulerOptions {
  int64_t max_seqs = 16;          // sequences per step
  int64_t max_batch_tokens = 256; // tokens per step
  AdmissionMode admission = AdmissionMode::kPreempt;
};

// The driver's view of one sequence, as the scheduler needs it. Owned by the step engine.
struct ScheduledSequence {
  SeqId id = 0;
  std::vector<int32_t> tokens;  // prompt, then generated ids; the KV holds the first n_computed
  int64_t n_computed = 0;       // n_past: tokens whose K/V are in the pool
  int64_t n_prompt = 0;
  int64_t max_total = 0;  // tokens this sequence may reach (prompt + max_new_tokens, <= n_ctx)
  uint64_t arrival = 0;   // submission order
  int64_t n_preempted = 0;
  int64_t n_cached_tokens = 0;  // prefix-cache hit of its latest admission
  // Speculative decoding: proposed tokens it would like verified with its next decode token.
  int64_t lookahead = 0;

  int64_t remaining() const { return static_cast<int64_t>(tokens.size()) - n_computed; }
};

struct StepPlanEntry {
  ScheduledSequence* seq;
  int64_t n_tokens;  // tokens [seq->n_computed, seq->n_computed + n_tokens) run this step
  // Decodes only: proposal slots granted after the token (budget and blocks reserved).
  int64_t n_lookahead = 0;
};

class Scheduler {
 public:
  Scheduler(const SchedulerOptions& options, BlockManager& blocks);

  const SchedulerOptions& options() const { return options_; }
  // Queues a new sequence (waiting). It must fit the pool alone (the step engine checks).
  void add(ScheduledSequence* seq);
  // Removes a sequence wherever it is and frees its blocks (finished or cancelled).
  void remove(ScheduledSequence* seq);

  // The next step's work, block tables reserved for it. Empty when nothing can run.
  std::vector<StepPlanEntry> schedule();

  int64_t n_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t n_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t n_preemptions() const { return n_preemptions_; }
  bool empty() const { return waiting_.empty() && running_.empty(); }

 private:
  int64_t blocks_for(int64_t n_tokens) const;
  bool admit(ScheduledSequence* seq, int64_t budget, std::vector<StepPlanEntry>& plan);
  void preempt(ScheduledSequence* seq);
  ScheduledSequence* newest_running_outside(const std::vector<StepPlanEntry>& plan) const;

  SchedulerOptions options_;
  BlockManager& blocks_;
  std::deque<ScheduledSequence*> waiting_;
  std::vector<ScheduledSequence*> running_;  // admission order
  int64_t n_preemptions_ = 0;
};

}  // namespace shardlm
