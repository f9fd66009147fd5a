// The step engine's driver: requests in, tokens out, many sequences per forward step.
// It owns the block manager (paged KV bookkeeping + prefix cache) and the scheduler, and drives
// an Engine opened with a paged KV pool (EngineOptions::kv_blocks). Every step() asks the
// scheduler for work, builds one StepInput (the only thing the ranks see), runs it, and samples
// one token for every sequence whose prompt is done, each with its own sampler (parameters,
// seed, penalties over its own history), so a sequence's tokens do not depend on what it was
// batched with. Finished sequences leave at once and free their blocks (full blocks stay in the
// prefix cache until evicted).
// Speculative decoding (speculation.h): a decoding sequence may carry up to k proposals (from a
// draft model or n-gram lookup) into the step; the target scores them with its last token in the
// same step and the verifier keeps a prefix plus one token (greedy: exactly plain decoding;
// sampling: exact rejection sampling, so the output law is unchanged). Rejected positions are
// rolled back by block truncation in both models' KV before anything enters the prefix cache.
// A request that can never run (its prompt plus max_new_tokens beyond n_ctx or beyond the whole
// pool) is refused by submit() with both numbers; nothing else is disturbed.
// Threading: one thread drives it (submit, cancel, step); a serving loop wrapping it for many
// client threads is the caller's business. Not here: text, chat templates, stop strings
// (session.h) and the ranks' forward (model/transformer.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "runtime/engine/block_manager.h"
#include "runtime/engine/draft_proposer.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/generation.h"
#include "runtime/engine/sampler.h"
#include "runtime/engine/scheduler.h"
#include "runtime/engine/speculation.h"
#include "runtime/engine/token_logprobs.h"

namespace shardlm {

struct StepEngineOptions {
  int64_t max_seqs = 16;  // sequences per step
  AdmissionMode admission = AdmissionMode::kPreempt;
  bool prefix_cache = true;
  // Speculative decoding of every sequence (kDraft needs the draft engine at construction).
  SpeculationOptions speculation;
};

using RequestId = uint64_t;

struct TokenRequest {
  std::vector<int32_t> prompt;
  SamplerParams sampling;
  int64_t max_new_tokens = 256;   // < 0: until a stop id or n_ctx
  std::vector<int32_t> stop_ids;  // the whole list (the caller adds the model's eos ids)
  bool logits = false;            // keep each generated token's logits (tests, logprobs)
  // Keep the logits of every prompt position (scoring, parity checks). Needs a step engine
  // without the prefix cache: cached positions are never computed.
  bool prompt_logits = false;
  // Called on the driving thread for each generated token (stop id excluded); false stops.
  std::function<bool(int32_t)> on_token;
  // >= 0 (at most kMaxTopLogprobs): each generated token's log-probability and this many
  // alternatives (token_logprobs.h), in result.logprobs and passed to on_logprob on the driving
  // thread just before on_token for the same token.
  int32_t top_logprobs = -1;
  std::function<void(const TokenLogprob&)> on_logprob;
};

struct TokenResult {
  FinishReason finish = FinishReason::kNone;
  std::vector<int32_t> tokens;         // generated ids, stop id excluded
  int32_t stop_token = -1;             // the stop id that ended it (kStopToken), else -1
  std::vector<float> logits;           // [tokens (+ the stop token), n_vocab] when asked
  std::vector<float> prompt_logits;    // [n_prompt, n_vocab] when asked
  std::vector<TokenLogprob> logprobs;  // one per token when request.top_logprobs >= 0
  int64_t n_prompt = 0;
  int64_t n_cached_prompt = 0;  // prompt tokens served by the prefix cache at first admission
  int64_t n_preempted = 0;
  double ttft_seconds = 0;  // submit to first token
  double seconds = 0;       // submit to finish
};

struct StepEngineStats {
  int64_t n_steps = 0;
  int64_t n_running = 0, n_waiting = 0;
  int64_t n_blocks = 0, n_blocks_used = 0, n_blocks_cached = 0;
  int64_t n_preemptions = 0;
  int64_t prefix_queried_tokens = 0, prefix_hit_tokens = 0;
  int64_t tokens_computed = 0;  // K/V rows written by all steps (prefill + decode)
  int64_t max_seqs_in_a_step = 0;
  // Speculative decoding: verifications run, tokens proposed, proposals accepted, tokens the
  // verifications emitted (accepted + one each), draft-model steps.
  int64_t spec_verifications = 0, spec_proposed = 0, spec_accepted = 0, spec_emitted = 0;
  int64_t draft_steps = 0;
  // Steps kept plain because speculation measured slower (SpecGate).
  int64_t spec_plain_steps_chosen = 0;
  double spec_acceptance_rate() const {
    return spec_proposed ? double(spec_accepted) / double(spec_proposed) : 0;
  }
  double spec_tokens_per_verification() const {
    return spec_verifications ? double(spec_emitted) / double(spec_verifications) : 0;
  }
  double prefix_hit_rate() const {
    return prefix_queried_tokens ? double(prefix_hit_tokens) / double(prefix_queried_tokens) : 0;
  }
};

class StepEngine {
 public:
  // `engine` must have a paged KV pool and outlive this object. With speculation kDraft,
  // `draft` is the draft model's engine (a paged KV pool, the same tokenizer: checked here,
  // Error(kInvalidArg) otherwise); it must outlive this object too.
  StepEngine(Engine& engine, const StepEngineOptions& options, Engine* draft = nullptr);
  ~StepEngine();

  // Queues a request. Throws Error(kInvalidArg) for bad ids or sampler parameters and
  // Error(kKvFull) when it can never fit (n_ctx or the pool), naming both numbers.
  RequestId submit(TokenRequest request);
  // Stops a request at the next step (kCancelled); unknown or finished ids are ignored.
  void cancel(RequestId id);
  bool has_work() const { return !scheduler_.empty(); }
  // Runs one step. Returns the requests that finished during it.
  std::vector<RequestId> step();
  // Steps until every submitted request has finished.
  void run_to_completion();
  bool finished(RequestId id) const;
  // The result of a finished request (removed from the engine). Throws for unknown/unfinished.
  TokenResult take_result(RequestId id);

  StepEngineStats stats() const;
  // A live request's context (prompt + generated so far; the last token has no KV yet while it
  // decodes) and the positions whose KV the pool holds. nullopt when not live. Inspection, tests.
  struct LiveSequence {
    std::span<const int32_t> tokens;
    int64_t n_computed = 0;
  };
  std::optional<LiveSequence> live(RequestId id) const;
  const BlockManager& block_manager() const { return blocks_; }
  // Leading tokens of `tokens` whose KV the prefix cache holds now (what a request starting
  // with them would reuse).
  int64_t cached_prefix_tokens(std::span<const int32_t> tokens) const {
    return blocks_.peek_cached_tokens(tokens);
  }
  Engine& engine() { return engine_; }
  const DraftProposer* draft() const { return draft_.get(); }
  int64_t n_ctx() const { return n_ctx_; }

 private:
  struct Sequence;
  struct Speculation;  // one sequence's proposal in the current step
  void finish(Sequence& s, FinishReason reason);
  // The sequence's next token is already the last of its tokens: records it, runs the stop
  // checks and the callback. Returns why the sequence ends (kNone: it goes on).
  FinishReason deliver(Sequence& s, int32_t token);
  // Sets each decoding sequence's wanted lookahead (its controller's k; n-gram: the proposals).
  void want_lookahead();
  // Proposals for the plan's decode entries within their granted lookahead.
  std::vector<Speculation> propose(const std::vector<StepPlanEntry>& plan);
  // Verifies one sequence's proposal against its logits rows; returns the emitted tokens.
  std::vector<int32_t> verify(Sequence& s, const Speculation& sp, const StepOutput& out,
                              size_t first_row, bool have_logits);

  Engine& engine_;
  StepEngineOptions options_;
  std::unique_ptr<DraftProposer> draft_;
  int64_t n_ctx_ = 0;
  BlockManager blocks_;
  Scheduler scheduler_;
  std::map<RequestId, std::unique_ptr<Sequence>> live_;
  std::map<RequestId, TokenResult> done_;
  RequestId next_id_ = 1;
  uint64_t arrivals_ = 0;
  int64_t n_steps_ = 0;
  int64_t tokens_computed_ = 0;
  int64_t max_seqs_in_a_step_ = 0;
  int64_t spec_verifications_ = 0, spec_proposed_ = 0, spec_accepted_ = 0, spec_emitted_ = 0;
  SpecPrior spec_prior_;    // what the sequences so far taught about the proposer
  SpecGate spec_gate_;      // whether speculating has measured faster than not
  int64_t n_decoding_ = 0;  // sequences decoding in the step being built (want_lookahead)
};

}  // namespace shardlm
