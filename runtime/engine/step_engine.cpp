// StepEngine: submit/cancel, one step = schedule + StepInput + forward + per-sequence sampling.
#include "runtime/engine/step_engine.h"

#include <algorithm>
#include <string>

#include "runtime/core/status.h"
#include "runtime/engine/ngram_proposer.h"
#include "runtime/engine/rejection_sampler.h"
#include "runtime/engine/step_builder.h"

namespace shardlm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The draft's sampler for a sequence: the target's parameters, a seed of its own.
SamplerParams draft_sampling(SamplerParams p) {
  p.seed ^= 0x9e3779b97f4a7c15ull;
  return p;
}

// The tokenizer a pack carries, or "" when it carries none.
std::string pack_tokenizer(const Engine& e) {
  const PackReader& pack = e.pack(0);
  return pack.has_file("tokenizer.json") ? pack.file("tokenizer.json") : std::string();
}

void check_draft_matches(const Engine& target, const Engine& draft) {
  const std::string a = pack_tokenizer(target), b = pack_tokenizer(draft);
  if (a != b) {
    fail(StatusCode::kInvalidArg,
         "the draft pack (" + draft.pack(0).path() + ") and the target pack (" +
             target.pack(0).path() + ") " +
             (a.empty() || b.empty() ? "do not both carry a tokenizer"
                                     : "carry different tokenizers") +
             ": speculative decoding needs a draft with the target's tokenizer");
  }
  if (a.empty() && draft.config().n_vocab != target.config().n_vocab) {
    fail(StatusCode::kInvalidArg,
         "the draft's vocabulary (" + std::to_string(draft.config().n_vocab) +
             ") differs from the target's (" + std::to_string(target.config().n_vocab) +
             ") and neither pack carries a tokenizer to compare");
  }
}

}  // namespace

struct StepEngine::Sequence {
  ScheduledSequence sched;
  TokenRequest request;
  Sampler sampler;
  TokenResult result;
  Clock::time_point submitted;
  bool cancelled = false;
  bool first_admission_seen = false;
  SpecController spec;
  Sampler draft_sampler;
  std::vector<int32_t> ngram;                   // this step's n-gram proposals
  std::optional<TokenLogprob> pending_logprob;  // the next delivered token's (top_logprobs)

  Sequence(TokenRequest r, const SpeculationOptions& so, SpecPrior* prior)
      : request(std::move(r)),
        sampler(request.sampling),
        spec(so, prior),
        draft_sampler(draft_sampling(request.sampling)) {}
};

struct StepEngine::Speculation {
  std::vector<int32_t> tokens;  // proposals after the sequence's last token
  std::vector<float> q;         // [tokens, n_vocab of the draft] (draft sampling), else empty
};

StepEngine::StepEngine(Engine& engine, const StepEngineOptions& options, Engine* draft)
    : engine_(engine),
      options_(options),
      n_ctx_(engine.n_ctx()),
      blocks_(engine.kv_pool_shape().n_blocks, engine.kv_pool_shape().block_size,
              engine.pack(0).pack_id(), options.prefix_cache),
      scheduler_(SchedulerOptions{options.max_seqs, engine.max_batch_tokens(), options.admission},
                 blocks_),
      spec_gate_(options.speculation.mode != SpeculationMode::kOff &&
                 options.speculation.adaptive && options.speculation.only_when_faster &&
                 !engine.deterministic()) {
  validate_speculation_options(options.speculation);
  if (options.speculation.mode == SpeculationMode::kDraft) {
    if (draft == nullptr) {
      fail(StatusCode::kInvalidArg, "draft-model speculation needs a draft model");
    }
    check_draft_matches(engine, *draft);
  }
  engine_.attach_step_engine();
  if (options.speculation.mode == SpeculationMode::kDraft) {
    try {
      draft_ = std::make_unique<DraftProposer>(*draft);
    } catch (...) {
      engine_.detach_step_engine();
      throw;
    }
  }
}

StepEngine::~StepEngine() {
  draft_.reset();
  engine_.detach_step_engine();
}

RequestId StepEngine::submit(TokenRequest request) {
  validate_sampler_params(request.sampling);
  if (request.top_logprobs > kMaxTopLogprobs) {
    fail(StatusCode::kInvalidArg, "top_logprobs " + std::to_string(request.top_logprobs) +
                                      " is more than " + std::to_string(kMaxTopLogprobs));
  }
  const int64_t n_prompt = static_cast<int64_t>(request.prompt.size());
  if (n_prompt == 0) fail(StatusCode::kInvalidArg, "request has no prompt tokens");
  if (request.prompt_logits && options_.prefix_cache) {
    fail(StatusCode::kInvalidArg,
         "prompt_logits needs a step engine without the prefix cache (cached prompt positions are "
         "never computed)");
  }
  const int64_t n_vocab = engine_.config().n_vocab;
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= n_vocab) {
      fail(StatusCode::kInvalidArg, "prompt token id " + std::to_string(id) +
                                        " outside the vocabulary of " + std::to_string(n_vocab));
    }
  }
  if (n_prompt >= n_ctx_) {
    fail(StatusCode::kKvFull, "prompt of " + std::to_string(n_prompt) +
                                  " tokens leaves no room to generate in a context of " +
                                  std::to_string(n_ctx_) + " tokens (n_ctx)");
  }
  const int64_t max_total =
      request.max_new_tokens < 0 ? n_ctx_ : std::min(n_ctx_, n_prompt + request.max_new_tokens);
  const int64_t pool_tokens = blocks_.n_blocks() * blocks_.block_size();
  // The sequence must fit the pool alone: prompt plus one generated token at the least, and in
  // guaranteed admission its whole budget.
  const int64_t must_fit =
      options_.admission == AdmissionMode::kGuaranteed ? max_total : n_prompt + 1;
  if (must_fit > pool_tokens) {
    fail(StatusCode::kKvFull, "request needs " + std::to_string(must_fit) +
                                  " tokens of KV cache (prompt " + std::to_string(n_prompt) +
                                  ") but the whole pool holds " + std::to_string(pool_tokens) +
                                  " (" + std::to_string(blocks_.n_blocks()) + " blocks of " +
                                  std::to_string(blocks_.block_size()) +
                                  "); shorten it or open the model with a larger KV cache");
  }
  const RequestId id = next_id_++;
  auto seq = std::make_unique<Sequence>(std::move(request), options_.speculation, &spec_prior_);
  seq->sched.id = id;
  seq->sched.tokens = seq->request.prompt;
  seq->sched.n_prompt = n_prompt;
  seq->sched.max_total = std::min(max_total, pool_tokens);
  seq->sched.arrival = arrivals_++;
  seq->submitted = Clock::now();
  seq->result.n_prompt = n_prompt;
  scheduler_.add(&seq->sched);
  live_.emplace(id, std::move(seq));
  return id;
}

void StepEngine::cancel(RequestId id) {
  auto it = live_.find(id);
  if (it != live_.end()) it->second->cancelled = true;
}

std::optional<StepEngine::LiveSequence> StepEngine::live(RequestId id) const {
  auto it = live_.find(id);
  if (it == live_.end()) return std::nullopt;
  return LiveSequence{it->second->sched.tokens, it->second->sched.n_computed};
}

bool StepEngine::finished(RequestId id) const {
  return done_.count(id) != 0;
}

TokenResult StepEngine::take_result(RequestId id) {
  auto it = done_.find(id);
  if (it == done_.end()) {
    fail(StatusCode::kInvalidArg, "request " + std::to_string(id) + " has not finished");
  }
  TokenResult r = std::move(it->second);
  done_.erase(it);
  return r;
}

void StepEngine::finish(Sequence& s, FinishReason reason) {
  s.result.finish = reason;
  s.result.n_preempted = s.sched.n_preempted;
  s.result.seconds = seconds_between(s.submitted, Clock::now());
  scheduler_.remove(&s.sched);
  const RequestId id = s.sched.id;
  if (draft_) draft_->release(id);
  done_.emplace(id, std::move(s.result));
  live_.erase(id);  // destroys s
}

FinishReason StepEngine::deliver(Sequence& s, int32_t token) {
  ScheduledSequence& q = s.sched;
  if (s.result.tokens.empty() && s.result.ttft_seconds == 0) {
    s.result.ttft_seconds = seconds_between(s.submitted, Clock::now());
  }
  const auto& stops = s.request.stop_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
    s.result.stop_token = token;
    return FinishReason::kStopToken;
  }
  s.result.tokens.push_back(token);
  if (s.pending_logprob) {
    s.result.logprobs.push_back(std::move(*s.pending_logprob));
    s.pending_logprob.reset();
    if (s.request.on_logprob) s.request.on_logprob(s.result.logprobs.back());
  }
  if (s.request.on_token && !s.request.on_token(token)) return FinishReason::kCallback;
  // Context length once this token is in it (the prompt plus what was delivered).
  const int64_t total = q.n_prompt + static_cast<int64_t>(s.result.tokens.size());
  if (total >= q.max_total) {
    const bool asked = s.request.max_new_tokens >= 0 &&
                       static_cast<int64_t>(s.result.tokens.size()) >= s.request.max_new_tokens;
    return asked ? FinishReason::kMaxTokens : FinishReason::kContextFull;
  }
  return FinishReason::kNone;
}

void StepEngine::want_lookahead() {
  const SpeculationOptions& so = options_.speculation;
  n_decoding_ = 0;
  for (auto& [id, sp] : live_) {
    const ScheduledSequence& q = sp->sched;
    n_decoding_ += q.remaining() == 1 && q.n_computed > 0;
  }
  const bool allowed =
      so.mode != SpeculationMode::kOff && n_decoding_ > 0 && spec_gate_.allow(n_decoding_);
  for (auto& [id, sp] : live_) {
    Sequence& s = *sp;
    ScheduledSequence& q = s.sched;
    q.lookahead = 0;
    s.ngram.clear();
    if (!allowed || q.remaining() != 1 || q.n_computed == 0) continue;
    // The proposals must stay inside the sequence's budget: positions up to max_total - 1.
    const int64_t k =
        std::min<int64_t>(s.spec.next_k(), q.max_total - static_cast<int64_t>(q.tokens.size()));
    if (k <= 0) continue;
    if (so.mode == SpeculationMode::kNgram) {
      s.ngram = propose_ngram(q.tokens, so.ngram_min, so.ngram_max, static_cast<int32_t>(k));
      q.lookahead = static_cast<int64_t>(s.ngram.size());
    } else {
      q.lookahead = k;
    }
  }
}

std::vector<StepEngine::Speculation> StepEngine::propose(const std::vector<StepPlanEntry>& plan) {
  std::vector<Speculation> spec(plan.size());
  const SpeculationOptions& so = options_.speculation;
  if (so.mode == SpeculationMode::kOff) return spec;
  std::vector<DraftRequest> requests;
  std::vector<size_t> which;
  for (size_t i = 0; i < plan.size(); ++i) {
    const int64_t k = plan[i].n_lookahead;
    if (k <= 0) continue;
    Sequence& s = *live_.at(plan[i].seq->id);
    if (so.mode == SpeculationMode::kNgram) {
      spec[i].tokens.assign(s.ngram.begin(), s.ngram.begin() + k);
      continue;
    }
    requests.push_back({plan[i].seq->id, plan[i].seq->tokens, static_cast<int32_t>(k),
                        &s.draft_sampler, so.draft_min_prob});
    which.push_back(i);
  }
  if (requests.empty()) return spec;
  std::vector<DraftProposal> proposals = draft_->propose(requests);
  for (size_t j = 0; j < which.size(); ++j) {
    spec[which[j]].tokens = std::move(proposals[j].tokens);
    spec[which[j]].q = std::move(proposals[j].q);
  }
  return spec;
}

std::vector<int32_t> StepEngine::verify(Sequence& s, const Speculation& sp, const StepOutput& out,
                                        size_t first_row, bool have_logits) {
  const size_t k = sp.tokens.size();
  const int64_t n_vocab = engine_.config().n_vocab;
  // History of position j: the context, then proposals [0, j) (the penalties see them).
  std::vector<int32_t> history = s.sched.tokens;
  std::vector<float> row;
  const auto logits_row = [&](size_t j) {
    const auto begin = out.logits.begin() + static_cast<ptrdiff_t>((first_row + j) * n_vocab);
    row.assign(begin, begin + n_vocab);
    return std::span<float>(row);
  };
  SpecVerdict v;
  if (s.sampler.greedy()) {
    std::vector<int32_t> argmax(k + 1);
    for (size_t j = 0; j <= k; ++j) {
      argmax[j] =
          have_logits ? s.sampler.sample(logits_row(j), history) : out.argmax[first_row + j];
      if (j < k) history.push_back(sp.tokens[j]);
    }
    v = verify_greedy(sp.tokens, argmax);
  } else {
    std::vector<float> p((k + 1) * static_cast<size_t>(n_vocab));
    for (size_t j = 0; j <= k; ++j) {
      s.sampler.distribution(
          logits_row(j), history,
          std::span<float>(p.data() + j * n_vocab, static_cast<size_t>(n_vocab)));
      if (j < k) history.push_back(sp.tokens[j]);
    }
    const int64_t n_vocab_q = draft_ ? draft_->n_vocab() : n_vocab;
    v = verify_sampled(sp.tokens, p, n_vocab, sp.q, n_vocab_q,
                       [&] { return s.sampler.next_uniform(); });
  }
  std::vector<int32_t> emitted(sp.tokens.begin(), sp.tokens.begin() + v.n_accepted);
  emitted.push_back(v.next);
  s.spec.update(static_cast<int32_t>(k), v.n_accepted);
  ++spec_verifications_;
  spec_proposed_ += static_cast<int64_t>(k);
  spec_accepted_ += v.n_accepted;
  spec_emitted_ += static_cast<int64_t>(emitted.size());
  return emitted;
}

std::vector<RequestId> StepEngine::step() {
  std::vector<RequestId> ended;
  // Cancellations take effect before scheduling.
  for (auto it = live_.begin(); it != live_.end();) {
    Sequence& s = *(it++)->second;
    if (s.cancelled) {
      ended.push_back(s.sched.id);
      finish(s, FinishReason::kCancelled);
    }
  }
  const Clock::time_point started = Clock::now();
  want_lookahead();
  const std::vector<StepPlanEntry> plan = scheduler_.schedule();
  if (plan.empty()) return ended;
  // One new token per sequence and no prompt chunk: a step SpecGate can compare.
  bool decode_only = static_cast<int64_t>(plan.size()) == n_decoding_;
  for (const StepPlanEntry& e : plan) {
    decode_only = decode_only && e.n_tokens == 1 && e.seq->remaining() == 1;
  }
  const std::vector<Speculation> spec = propose(plan);
  bool speculated = false;
  for (const Speculation& sp : spec) speculated = speculated || !sp.tokens.empty();
  int64_t emitted_tokens = 0;

  int64_t max_blocks = 1;
  for (const StepPlanEntry& e : plan) {
    max_blocks =
        std::max<int64_t>(max_blocks, static_cast<int64_t>(blocks_.block_table(e.seq->id).size()));
  }
  StepBuilder b(blocks_.block_size(), max_blocks);
  bool want_logits = false;
  // What each logits row is for, in logits_rows order: a prompt position whose logits the
  // request keeps, the sampling of the sequence's next token, or both; or the first of a
  // speculating sequence's k + 1 verification rows.
  struct Row {
    Sequence* seq;
    bool prompt;
    bool sample;
    const Speculation* spec;
  };
  std::vector<Row> rows;
  const int64_t n_vocab = engine_.config().n_vocab;
  for (size_t i = 0; i < plan.size(); ++i) {
    const StepPlanEntry& e = plan[i];
    ScheduledSequence& q = *e.seq;
    Sequence& s = *live_.at(q.id);
    if (!s.first_admission_seen) {
      s.first_admission_seen = true;
      s.result.n_cached_prompt = q.n_cached_tokens;
    }
    b.begin_sequence(blocks_.block_table(q.id));
    const int64_t end = q.n_computed + e.n_tokens;
    if (!spec[i].tokens.empty()) {
      // Verification: the last token and every proposal, each with a logits row.
      rows.push_back({&s, false, false, &spec[i]});
      b.want_logits(b.add_token(q.tokens.back(), q.n_computed));
      for (size_t j = 0; j < spec[i].tokens.size(); ++j) {
        b.want_logits(b.add_token(spec[i].tokens[j], q.n_computed + 1 + static_cast<int64_t>(j)));
      }
      b.end_sequence(end + static_cast<int64_t>(spec[i].tokens.size()));
      want_logits = want_logits || s.sampler.needs_logits() || s.request.logits ||
                    s.request.top_logprobs >= 0;
      continue;
    }
    // Prompt positions already kept (a preempted request recomputes them: not kept twice).
    const int64_t n_kept = static_cast<int64_t>(s.result.prompt_logits.size()) / n_vocab;
    for (int64_t p = q.n_computed; p < end; ++p) {
      const bool prompt_row = s.request.prompt_logits && p < q.n_prompt && p >= n_kept;
      const bool sample_row = p == end - 1 && end == static_cast<int64_t>(q.tokens.size());
      const int32_t r = b.add_token(q.tokens[static_cast<size_t>(p)], p);
      if (prompt_row || sample_row) {
        b.want_logits(r);
        rows.push_back({&s, prompt_row, sample_row, nullptr});
        want_logits = want_logits || prompt_row;
        if (sample_row) {
          want_logits = want_logits || s.sampler.needs_logits() || s.request.logits ||
                        s.request.top_logprobs >= 0;
        }
      }
    }
    b.end_sequence(end);
  }

  const StepInput& in = b.input();
  const StepOutput out = engine_.execute_step(in, want_logits);
  ++n_steps_;
  tokens_computed_ += in.n_tokens();
  max_seqs_in_a_step_ = std::max(max_seqs_in_a_step_, in.n_seqs());
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!spec[i].tokens.empty()) continue;  // committed after verification
    plan[i].seq->n_computed += plan[i].n_tokens;
    blocks_.commit(plan[i].seq->id, plan[i].seq->tokens, plan[i].seq->n_computed);
    // Lookahead granted but nothing proposed: give its blocks back.
    if (plan[i].n_lookahead > 0) blocks_.truncate(plan[i].seq->id, plan[i].seq->n_computed);
  }

  size_t logits_row = 0;
  for (const Row& r : rows) {
    Sequence& s = *r.seq;
    ScheduledSequence& q = s.sched;
    const size_t first = logits_row;
    if (r.spec != nullptr) {
      logits_row += r.spec->tokens.size() + 1;
      const std::vector<int32_t> emitted = verify(s, *r.spec, out, first, want_logits);
      emitted_tokens += static_cast<int64_t>(emitted.size());
      // The KV of the last token and the accepted proposals stays; the rest is rolled back
      // before any block enters the prefix cache.
      const int64_t n_valid = q.n_computed + static_cast<int64_t>(emitted.size());
      q.tokens.insert(q.tokens.end(), emitted.begin(), emitted.end());
      blocks_.truncate(q.id, n_valid);
      q.n_computed = n_valid;
      blocks_.commit(q.id, q.tokens, n_valid);
      if (draft_) draft_->truncate(q.id, n_valid);
      FinishReason reason = FinishReason::kNone;
      for (size_t j = 0; j < emitted.size() && reason == FinishReason::kNone; ++j) {
        if (want_logits) {  // (without it, no logits were read back: out.logits is empty)
          const auto row = out.logits.begin() + static_cast<ptrdiff_t>((first + j) * n_vocab);
          if (s.request.logits) {  // the row that produced emitted token j
            s.result.logits.insert(s.result.logits.end(), row, row + n_vocab);
          }
          if (s.request.top_logprobs >= 0) {
            s.pending_logprob =
                token_logprob(std::span<const float>(&*row, static_cast<size_t>(n_vocab)),
                              emitted[j], s.request.top_logprobs);
          }
        }
        reason = deliver(s, emitted[j]);
      }
      if (reason != FinishReason::kNone) {
        ended.push_back(q.id);
        finish(s, reason);
      }
      continue;
    }
    ++logits_row;
    // The row's logits; only read back (out.logits non-empty) when want_logits.
    const auto row_at = [&] {
      return out.logits.begin() + static_cast<ptrdiff_t>(first * n_vocab);
    };
    if (r.prompt) {
      s.result.prompt_logits.insert(s.result.prompt_logits.end(), row_at(), row_at() + n_vocab);
    }
    if (!r.sample) continue;
    int32_t next = out.argmax[first];
    if (want_logits) {
      const auto row_begin = row_at();
      std::vector<float> row(row_begin, row_begin + n_vocab);
      if (s.request.logits) s.result.logits.insert(s.result.logits.end(), row.begin(), row.end());
      if (s.sampler.needs_logits()) next = s.sampler.sample(row, q.tokens);
      if (s.request.top_logprobs >= 0) {
        s.pending_logprob =
            token_logprob(std::span<const float>(&*row_begin, static_cast<size_t>(n_vocab)), next,
                          s.request.top_logprobs);
      }
    }
    q.tokens.push_back(next);
    ++emitted_tokens;
    const FinishReason reason = deliver(s, next);
    if (reason != FinishReason::kNone) {
      ended.push_back(q.id);
      finish(s, reason);
    }
  }
  spec_gate_.record(n_decoding_, decode_only, speculated, emitted_tokens,
                    seconds_between(started, Clock::now()));
  return ended;
}

void StepEngine::run_to_completion() {
  while (has_work()) step();
}

StepEngineStats StepEngine::stats() const {
  StepEngineStats st;
  st.n_steps = n_steps_;
  st.n_running = scheduler_.n_running();
  st.n_waiting = scheduler_.n_waiting();
  st.n_blocks = blocks_.n_blocks();
  st.n_blocks_used = blocks_.n_used();
  st.n_blocks_cached = blocks_.n_cached();
  st.n_preemptions = scheduler_.n_preemptions();
  st.prefix_queried_tokens = blocks_.prefix_queried_tokens();
  st.prefix_hit_tokens = blocks_.prefix_hit_tokens();
  st.tokens_computed = tokens_computed_;
  st.max_seqs_in_a_step = max_seqs_in_a_step_;
  st.spec_verifications = spec_verifications_;
  st.spec_proposed = spec_proposed_;
  st.spec_accepted = spec_accepted_;
  st.spec_emitted = spec_emitted_;
  st.draft_steps = draft_ ? draft_->n_steps() : 0;
  st.spec_plain_steps_chosen = spec_gate_.plain_chosen();
  return st;
}

}  // namespace shardlm
