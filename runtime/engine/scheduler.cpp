// Scheduler: decodes first, then chunked prefills, then admissions; preemption by recompute.
#include "runtime/engine/scheduler.h"

#include <algorithm>
#include <string>

#include "runtime/core/status.h"

namespace shardlm {

Scheduler::Scheduler(const SchedulerOptions& options, BlockManager& blocks)
    : options_(options), blocks_(blocks) {
  if (options.max_seqs <= 0 || options.max_batch_tokens <= 0) {
    fail(StatusCode::kInvalidArg, "scheduler: max_seqs (" + std::to_string(options.max_seqs) +
                                      ") and max_batch_tokens (" +
                                      std::to_string(options.max_batch_tokens) +
                                      ") must be positive");
  }
}

int64_t Scheduler::blocks_for(int64_t n_tokens) const {
  return (n_tokens + blocks_.block_size() - 1) / blocks_.block_size();
}

void Scheduler::add(ScheduledSequence* seq) {
  waiting_.push_back(seq);
}

void Scheduler::remove(ScheduledSequence* seq) {
  auto w = std::find(waiting_.begin(), waiting_.end(), seq);
  if (w != waiting_.end()) {
    waiting_.erase(w);  // waiting sequences hold no blocks
    return;
  }
  auto r = std::find(running_.begin(), running_.end(), seq);
  if (r != running_.end()) {
    running_.erase(r);
    blocks_.free_sequence(seq->id);
  }
}

void Scheduler::preempt(ScheduledSequence* seq) {
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  blocks_.free_sequence(seq->id);
  seq->n_computed = 0;
  ++seq->n_preempted;
  ++n_preemptions_;
  waiting_.push_front(seq);
}

ScheduledSequence* Scheduler::newest_running_outside(const std::vector<StepPlanEntry>& plan) const {
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    const bool planned = std::any_of(plan.begin(), plan.end(),
                                     [&](const StepPlanEntry& e) { return e.seq == *it; });
    if (!planned) return *it;
  }
  return nullptr;
}

bool Scheduler::admit(ScheduledSequence* seq, int64_t budget, std::vector<StepPlanEntry>& plan) {
  if (options_.admission == AdmissionMode::kGuaranteed) {
    // Blocks every running sequence may still take, plus this one's whole budget.
    int64_t need = blocks_for(seq->max_total);
    for (const ScheduledSequence* r : running_) {
      need += std::max<int64_t>(
          0, blocks_for(r->max_total) - static_cast<int64_t>(blocks_.block_table(r->id).size()));
    }
    if (need > blocks_.n_free()) return false;
  }
  // Check before registering, so a sequence that waits does not count prefix lookups per step.
  const int64_t cached = blocks_.peek_cached_tokens(seq->tokens);
  const int64_t n = std::min(static_cast<int64_t>(seq->tokens.size()) - cached, budget);
  if (!blocks_.can_add(seq->tokens, cached + n)) return false;
  if (blocks_.add_sequence(seq->id, seq->tokens) != cached || !blocks_.reserve(seq->id, cached + n)) {
    fail(StatusCode::kInternal, "block manager disagreed with its own admission check for sequence " +
                                    std::to_string(seq->id));
  }
  seq->n_computed = cached;
  seq->n_cached_tokens = cached;
  running_.push_back(seq);
  plan.push_back({seq, n});
  return true;
}

std::vector<StepPlanEntry> Scheduler::schedule() {
  std::vector<StepPlanEntry> plan;
  int64_t budget = options_.max_batch_tokens;
  const auto full = [&] {
    return budget <= 0 || static_cast<int64_t>(plan.size()) >= options_.max_seqs;
  };
  // Running sequences: decodes (one token left to compute), then prefill chunks. A copy of the
  // order, since preemption edits running_.
  for (int pass = 0; pass < 2; ++pass) {
    const std::vector<ScheduledSequence*> order = running_;
    for (ScheduledSequence* seq : order) {
      if (full()) break;
      if (std::find(running_.begin(), running_.end(), seq) == running_.end()) continue;  // preempted
      const bool decode = seq->remaining() == 1;
      if (decode != (pass == 0)) continue;
      const int64_t n = std::min(seq->remaining(), budget);
      bool placed = false;
      while (!(placed = blocks_.reserve(seq->id, seq->n_computed + n))) {
        ScheduledSequence* victim = newest_running_outside(plan);
        if (victim == nullptr) break;
        preempt(victim);
        if (victim == seq) break;
      }
      if (placed) {
        plan.push_back({seq, n});
        budget -= n;
      } else if (std::find(running_.begin(), running_.end(), seq) != running_.end()) {
        preempt(seq);  // nothing left to take blocks from: recompute it later
      }
    }
    if (pass == 0) {
      // Lookahead for speculating decodes, from the budget the decodes left.
      for (StepPlanEntry& e : plan) {
        const int64_t la = std::min(e.seq->lookahead, budget);
        if (la > 0 && blocks_.reserve(e.seq->id, e.seq->n_computed + 1 + la)) {
          e.n_lookahead = la;
          budget -= la;
        }
      }
    }
  }
  // Admissions, first come first served: stop at the first that does not fit.
  while (!waiting_.empty() && !full()) {
    ScheduledSequence* seq = waiting_.front();
    if (!admit(seq, budget, plan)) break;
    waiting_.pop_front();
    budget -= plan.back().n_tokens;
  }
  return plan;
}

}  // namespace shardlm
