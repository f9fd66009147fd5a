// DraftProposer: catch-up prefill, then k batched draft steps; truncation on rejection.
#include "runtime/engine/draft_proposer.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/rejection_sampler.h"
#include "runtime/engine/step_builder.h"

namespace shardlm {

namespace {

// Probability of the argmax under softmax(logits).   logits [n]
float top_probability(std::span<const float> logits) {
  const float m = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - m));
  return static_cast<float>(1.0 / sum);
}

}  // namespace

EngineOptions draft_engine_options(const EngineOptions& target_options, const Engine& target,
                                   const std::string& draft_pack_dir) {
  EngineOptions o;
  o.pack_dir = draft_pack_dir;
  o.backend = target_options.backend;
  o.n_threads = target_options.n_threads;
  o.devices = target_options.devices;
  o.mem_fraction = target_options.mem_fraction;
  o.n_ctx = target.n_ctx();
  o.max_batch_tokens = target.max_batch_tokens();
  o.default_sequence = false;
  o.kv_blocks = target.kv_blocks() > 0 ? target.kv_blocks() : -1;
  o.block_size = target_options.block_size;
  o.kv_dtype = target_options.kv_dtype;
  o.deterministic = target_options.deterministic;
  o.activations = target_options.activations;
  o.backend_settings = target_options.backend_settings;
  return o;
}

DraftProposer::DraftProposer(Engine& draft)
    : engine_(draft),
      n_vocab_(draft.config().n_vocab),
      max_batch_tokens_(draft.max_batch_tokens()),
      blocks_(draft.kv_pool_shape().n_blocks, draft.kv_pool_shape().block_size,
              draft.pack(0).pack_id(), /*prefix_cache=*/false) {
  engine_.attach_step_engine();
}

DraftProposer::~DraftProposer() {
  engine_.detach_step_engine();
}

int64_t DraftProposer::n_computed(SeqId id) const {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? 0 : it->second.n_computed;
}

void DraftProposer::truncate(SeqId id, int64_t n_valid) {
  auto it = seqs_.find(id);
  if (it == seqs_.end() || it->second.n_computed <= n_valid) return;
  it->second.n_computed = blocks_.truncate(id, n_valid);
}

void DraftProposer::release(SeqId id) {
  if (seqs_.erase(id) != 0) blocks_.free_sequence(id);
}

bool DraftProposer::make_room(SeqId id, int64_t n_tokens, std::span<const DraftRequest> requests) {
  while (!blocks_.reserve(id, n_tokens)) {
    // Drop the least recently used sequence that is not asked for now.
    SeqId victim = 0;
    uint64_t oldest = UINT64_MAX;
    for (const auto& [seq, st] : seqs_) {
      const SeqId sid = seq;  // a structured binding cannot be captured before C++20 in clang 14
      const bool asked = std::any_of(requests.begin(), requests.end(),
                                     [&](const DraftRequest& r) { return r.id == sid; });
      if (!asked && st.last_used < oldest) {
        oldest = st.last_used;
        victim = sid;
      }
    }
    if (oldest == UINT64_MAX) return false;
    release(victim);
  }
  return true;
}

std::vector<DraftProposal> DraftProposer::propose(std::span<const DraftRequest> requests) {
  std::vector<DraftProposal> out(requests.size());
  ++clock_;
  // Sequences that take part: room for their context plus k - 1 drafted tokens' KV.
  struct Active {
    size_t index;
    std::vector<int32_t> history;  // context + drafts so far (the draft sampler's penalties)
    bool drafting = true;
  };
  std::vector<Active> active;
  for (size_t i = 0; i < requests.size(); ++i) {
    const DraftRequest& r = requests[i];
    if (r.k <= 0 || r.context.empty()) continue;
    if (!blocks_.contains(r.id)) {
      blocks_.add_sequence(r.id, {});
      seqs_[r.id] = State{};
    }
    State& st = seqs_.at(r.id);
    st.last_used = clock_;
    st.n_computed = std::min<int64_t>(st.n_computed, static_cast<int64_t>(r.context.size()) - 1);
    st.n_computed = blocks_.truncate(r.id, st.n_computed);
    const int64_t need = static_cast<int64_t>(r.context.size()) + r.k - 1;
    if (!make_room(r.id, need, requests)) continue;
    active.push_back({i, std::vector<int32_t>(r.context.begin(), r.context.end()), true});
  }
  const int64_t bs = blocks_.block_size();

  // Takes one logits row of request a: the next proposal, or the end of drafting for it.
  const auto take = [&](Active& a, std::span<float> row) {
    const DraftRequest& r = requests[a.index];
    DraftProposal& p = out[a.index];
    int32_t token;
    float prob;
    if (r.sampler == nullptr || r.sampler->greedy()) {
      prob = top_probability(row);
      token = r.sampler ? r.sampler->sample(row, a.history)
                        : static_cast<int32_t>(std::max_element(row.begin(), row.end()) -
                                               row.begin());
    } else {
      const size_t off = p.q.size();
      p.q.resize(off + static_cast<size_t>(n_vocab_));
      const std::span<float> q(p.q.data() + off, static_cast<size_t>(n_vocab_));
      r.sampler->distribution(row, a.history, q);
      token = draw_from_weights(q, r.sampler->next_uniform());
      prob = q[static_cast<size_t>(token)];
    }
    if (prob < r.min_prob && !p.tokens.empty()) {
      // Too unsure to be worth verifying: drop it (its q row too) and stop here.
      if (!p.q.empty()) p.q.resize(p.q.size() - static_cast<size_t>(n_vocab_));
      a.drafting = false;
      return;
    }
    p.tokens.push_back(token);
    a.history.push_back(token);
    if (static_cast<int32_t>(p.tokens.size()) >= r.k || prob < r.min_prob) a.drafting = false;
  };

  // Runs one draft step over `pieces`: per active sequence, tokens [from, to) of its history.
  struct Piece {
    Active* a;
    int64_t from, to;
    bool logits;
  };
  const auto run = [&](const std::vector<Piece>& pieces) {
    int64_t max_blocks = 1;
    for (const Piece& pc : pieces) {
      max_blocks = std::max<int64_t>(
          max_blocks, static_cast<int64_t>(blocks_.block_table(requests[pc.a->index].id).size()));
    }
    StepBuilder b(bs, max_blocks);
    for (const Piece& pc : pieces) {
      const SeqId id = requests[pc.a->index].id;
      b.begin_sequence(blocks_.block_table(id));
      for (int64_t p = pc.from; p < pc.to; ++p) {
        const int32_t row = b.add_token(pc.a->history[static_cast<size_t>(p)], p);
        if (pc.logits && p == pc.to - 1) b.want_logits(row);
      }
      b.end_sequence(pc.to);
    }
    StepOutput so = engine_.execute_step(b.input(), /*gather_logits=*/true);
    ++n_steps_;
    size_t row = 0;
    for (const Piece& pc : pieces) {
      const SeqId id = requests[pc.a->index].id;
      State& st = seqs_.at(id);
      st.n_computed = pc.to;
      blocks_.commit(id, pc.a->history, pc.to);
      if (!pc.logits) continue;
      take(*pc.a, std::span<float>(so.logits.data() + row * static_cast<size_t>(n_vocab_),
                                   static_cast<size_t>(n_vocab_)));
      ++row;
    }
  };

  // 1. Catch up: every active sequence computes its unseen context tokens, chunked by the
  //    draft's token budget; the chunk that reaches the end yields the first proposal.
  for (;;) {
    std::vector<Piece> pieces;
    int64_t budget = max_batch_tokens_;
    for (Active& a : active) {
      const SeqId id = requests[a.index].id;
      const int64_t done = seqs_.at(id).n_computed;
      const int64_t len = static_cast<int64_t>(requests[a.index].context.size());
      if (done >= len || budget <= 0) continue;
      const int64_t n = std::min(len - done, budget);
      budget -= n;
      pieces.push_back({&a, done, done + n, done + n == len});
    }
    if (pieces.empty()) break;
    run(pieces);
  }
  // 2. Draft: feed each sequence's newest proposal until it has k or stops.
  for (;;) {
    std::vector<Piece> pieces;
    for (Active& a : active) {
      if (!a.drafting) continue;
      const int64_t at = static_cast<int64_t>(a.history.size()) - 1;
      pieces.push_back({&a, at, at + 1, true});
    }
    if (pieces.empty()) break;
    run(pieces);
  }
  return out;
}

}  // namespace shardlm
