// StepEngine: submit/cancel, one step = schedule + StepInput + forward + per-sequence sampling.
#include "runtime/engine/step_engine.h"

#include <algorithm>
#include <string>

#include "runtime/core/status.h"

namespace shardlm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
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

  Sequence(TokenRequest r) : request(std::move(r)), sampler(request.sampling) {}
};

StepEngine::StepEngine(Engine& engine, const StepEngineOptions& options)
    : engine_(engine),
      options_(options),
      n_ctx_(engine.n_ctx()),
      blocks_(engine.kv_pool_shape().n_blocks, engine.kv_pool_shape().block_size,
              engine.pack(0).pack_id(), options.prefix_cache),
      scheduler_(SchedulerOptions{options.max_seqs, engine.max_batch_tokens(), options.admission},
                 blocks_) {
  engine_.attach_step_engine();
}

StepEngine::~StepEngine() {
  engine_.detach_step_engine();
}

RequestId StepEngine::submit(TokenRequest request) {
  validate_sampler_params(request.sampling);
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
  auto seq = std::make_unique<Sequence>(std::move(request));
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
  done_.emplace(id, std::move(s.result));
  live_.erase(id);  // destroys s
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
  const std::vector<StepPlanEntry> plan = scheduler_.schedule();
  if (plan.empty()) return ended;

  StepInput in;
  const int64_t bs = blocks_.block_size();
  int64_t max_blocks = 1;
  for (const StepPlanEntry& e : plan) {
    max_blocks =
        std::max<int64_t>(max_blocks, static_cast<int64_t>(blocks_.block_table(e.seq->id).size()));
  }
  in.max_blocks = static_cast<int32_t>(max_blocks);
  in.seq_starts.push_back(0);
  bool want_logits = false;
  // What each logits row is for, in logits_rows order: a prompt position whose logits the
  // request keeps, the sampling of the sequence's next token, or both.
  struct Row {
    Sequence* seq;
    bool prompt;
    bool sample;
  };
  std::vector<Row> rows;
  const int64_t n_vocab = engine_.config().n_vocab;
  for (const StepPlanEntry& e : plan) {
    ScheduledSequence& q = *e.seq;
    Sequence& s = *live_.at(q.id);
    if (!s.first_admission_seen) {
      s.first_admission_seen = true;
      s.result.n_cached_prompt = q.n_cached_tokens;
    }
    const std::span<const int32_t> table = blocks_.block_table(q.id);
    // Prompt positions already kept (a preempted request recomputes them: not kept twice).
    const int64_t n_kept = static_cast<int64_t>(s.result.prompt_logits.size()) / n_vocab;
    const int64_t end = q.n_computed + e.n_tokens;
    for (int64_t p = q.n_computed; p < end; ++p) {
      const bool prompt_row = s.request.prompt_logits && p < q.n_prompt && p >= n_kept;
      const bool sample_row = p == end - 1 && end == static_cast<int64_t>(q.tokens.size());
      if (prompt_row || sample_row) {
        in.logits_rows.push_back(static_cast<int32_t>(in.tokens.size()));
        rows.push_back({&s, prompt_row, sample_row});
        want_logits = want_logits || prompt_row;
        if (sample_row) {
          want_logits = want_logits || s.sampler.needs_logits() || s.request.logits;
        }
      }
      in.tokens.push_back(q.tokens[static_cast<size_t>(p)]);
      in.positions.push_back(static_cast<int32_t>(p));
      in.slot_mapping.push_back(static_cast<int64_t>(table[static_cast<size_t>(p / bs)]) * bs +
                                p % bs);
    }
    in.seq_starts.push_back(static_cast<int32_t>(in.tokens.size()));
    in.context_lens.push_back(static_cast<int32_t>(q.n_computed + e.n_tokens));
    const size_t row0 = in.block_table.size();
    in.block_table.resize(row0 + static_cast<size_t>(max_blocks), -1);
    std::copy(table.begin(), table.end(), in.block_table.begin() + static_cast<ptrdiff_t>(row0));
  }

  const StepOutput out = engine_.execute_step(in, want_logits);
  ++n_steps_;
  tokens_computed_ += in.n_tokens();
  max_seqs_in_a_step_ = std::max(max_seqs_in_a_step_, in.n_seqs());
  for (const StepPlanEntry& e : plan) {
    e.seq->n_computed += e.n_tokens;
    blocks_.commit(e.seq->id, e.seq->tokens, e.seq->n_computed);
  }

  const auto now = Clock::now();
  for (size_t i = 0; i < rows.size(); ++i) {
    Sequence& s = *rows[i].seq;
    ScheduledSequence& q = s.sched;
    const auto row_begin = out.logits.begin() + static_cast<ptrdiff_t>(i * n_vocab);
    if (rows[i].prompt) {
      s.result.prompt_logits.insert(s.result.prompt_logits.end(), row_begin, row_begin + n_vocab);
    }
    if (!rows[i].sample) continue;
    int32_t next = out.argmax[i];
    if (want_logits) {
      std::vector<float> row(row_begin, row_begin + n_vocab);
      if (s.request.logits) s.result.logits.insert(s.result.logits.end(), row.begin(), row.end());
      if (s.sampler.needs_logits()) next = s.sampler.sample(row, q.tokens);
    }
    if (s.result.tokens.empty() && s.result.ttft_seconds == 0) {
      s.result.ttft_seconds = seconds_between(s.submitted, now);
    }
    const auto& stops = s.request.stop_ids;
    FinishReason reason = FinishReason::kNone;
    q.tokens.push_back(next);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) {
      reason = FinishReason::kStopToken;
      s.result.stop_token = next;
    } else {
      s.result.tokens.push_back(next);
      if (s.request.on_token && !s.request.on_token(next)) {
        reason = FinishReason::kCallback;
      } else if (static_cast<int64_t>(q.tokens.size()) >= q.max_total) {
        const bool asked = s.request.max_new_tokens >= 0 &&
                           static_cast<int64_t>(s.result.tokens.size()) >= s.request.max_new_tokens;
        reason = asked ? FinishReason::kMaxTokens : FinishReason::kContextFull;
      }
    }
    if (reason != FinishReason::kNone) {
      ended.push_back(q.id);
      finish(s, reason);
    }
  }
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
  return st;
}

}  // namespace shardlm
