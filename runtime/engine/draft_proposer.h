// DraftProposer: proposals from a draft model for speculative decoding. It drives its own
// Engine (the draft pack, any TP size, its ranks as threads of the driving process) with its own
// paged KV pool and block manager, and keeps, per target sequence, how many of the sequence's
// tokens the draft has KV for. propose() brings every asked sequence up to date (a chunked
// prefill of the tokens the draft has not seen: the prompt the first time, one or two tokens
// after each verification) and then drafts up to k tokens, all sequences batched in each draft
// step. After verification the step engine calls truncate() with the tokens that are still
// right, so the draft's KV never holds a rejected token (rollback by block truncation).
// When the draft's pool is full it drops the state of sequences not being proposed for (least
// recently used first; they re-prefill later), else the sequence gets no proposal this step.
// Not here: verification (rejection_sampler.h), how many tokens to ask for (speculation.h).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "runtime/engine/block_manager.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/sampler.h"

namespace shardlm {

// Options for opening a draft model beside the opened `target`: the same backend, devices,
// threads, context, step budget, KV dtype and block count, determinism and activation mode;
// always in this process (its ranks are threads of the driving process, whatever the target's
// layout: under mpirun the draft runs on rank 0 only, which must be able to read its files).
EngineOptions draft_engine_options(const EngineOptions& target_options, const Engine& target,
                                   const std::string& draft_pack_dir);

struct DraftRequest {
  SeqId id = 0;
  std::span<const int32_t> context;  // the sequence's tokens; the last one has no KV anywhere
  int32_t k = 0;                     // most tokens to propose
  // The draft's own sampler for this sequence (same parameters as the target's, its own seed).
  // Greedy: proposals are its argmax and no q is kept.
  Sampler* sampler = nullptr;
  float min_prob = 0;  // stop once the draft's probability of its proposal is below this
};

struct DraftProposal {
  std::vector<int32_t> tokens;
  std::vector<float> q;  // [tokens, n_vocab] the draft's distributions (sampling only)
};

class DraftProposer {
 public:
  // `draft` must have a paged KV pool, no step engine attached, and outlive this object.
  explicit DraftProposer(Engine& draft);
  ~DraftProposer();
  DraftProposer(const DraftProposer&) = delete;
  DraftProposer& operator=(const DraftProposer&) = delete;

  int64_t n_vocab() const { return n_vocab_; }
  std::vector<DraftProposal> propose(std::span<const DraftRequest> requests);
  // The first n_valid tokens of the sequence's context are unchanged (the rest was rejected).
  void truncate(SeqId id, int64_t n_valid);
  void release(SeqId id);  // the sequence finished

  int64_t n_steps() const { return n_steps_; }  // draft forward steps run
  int64_t n_computed(SeqId id) const;           // tokens the draft holds KV for (tests)
  const BlockManager& block_manager() const { return blocks_; }
  Engine& engine() { return engine_; }

 private:
  struct State {
    int64_t n_computed = 0;
    uint64_t last_used = 0;
  };
  bool make_room(SeqId id, int64_t n_tokens, std::span<const DraftRequest> requests);

  Engine& engine_;
  int64_t n_vocab_ = 0;
  int64_t max_batch_tokens_ = 0;
  BlockManager blocks_;
  std::map<SeqId, State> seqs_;
  uint64_t clock_ = 0;
  int64_t n_steps_ = 0;
};

}  // namespace shardlm
