// Engine: pack-set opening, rank threads, sequences, chunked eval, gathered logits and distributed
// argmax.
#include "runtime/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <thread>

#include "runtime/backend/registry.h"
#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"
#include "runtime/engine/runtime_plan.h"
#include "runtime/model/kv_cache.h"
#include "runtime/model/transformer.h"

namespace shardlm {

struct Engine::Rank {
  int rank = 0;   // in the tensor-parallel group
  int index = 0;  // in this process's ranks_ (== rank in-process; 0 for ranks as processes)
  std::unique_ptr<PackReader> pack;
  std::unique_ptr<Backend> backend;
  std::shared_ptr<Communicator> host_comm;  // threads, single or MPI; before comm: outlives it
  std::shared_ptr<Communicator> comm;       // the backend's on top of host_comm, or host_comm
  std::unique_ptr<Transformer> model;
  std::unique_ptr<KvPool> kv_pool;  // the step engine's paged KV (EngineOptions::kv_blocks)
  std::vector<float> host_logits;   // this rank's logits on the host
};

namespace {

void check_same_config(const PackReader& a, const PackReader& b) {
  const ModelConfig& x = a.config();
  const ModelConfig& y = b.config();
  const bool same = x.family == y.family && x.n_vocab == y.n_vocab && x.n_embd == y.n_embd &&
                    x.n_ff == y.n_ff && x.n_layer == y.n_layer && x.n_head == y.n_head &&
                    x.n_head_kv == y.n_head_kv && x.head_dim == y.head_dim &&
                    a.weight_dtype() == b.weight_dtype();
  if (!same || a.pack_id() != b.pack_id()) {
    fail(StatusCode::kFormat, b.path() + " does not belong to the same pack as " + a.path());
  }
}

}  // namespace

EngineSequence::~EngineSequence() = default;

Engine::Engine(const EngineOptions& options) : options_(options) {
  set_ = find_pack_set(options.pack_dir, options.tp);
  const int tp = set_.tp_size;
  const BackendRegistry registry = builtin_backends();
  if (!registry.has(options.backend)) registry.create(options.backend, {});  // throws, listing
  int total = options.n_threads > 0 ? options.n_threads
                                    : static_cast<int>(std::thread::hardware_concurrency());
  threads_per_rank_ = std::max(1, total / tp);
  if (options.max_batch_tokens <= 0) {
    fail(StatusCode::kInvalidArg, "max_batch_tokens must be positive");
  }
  if (options.kv_blocks < -1 || options.block_size <= 0 || options.block_size > 4096) {
    fail(StatusCode::kInvalidArg, "kv_blocks (" + std::to_string(options.kv_blocks) +
                                      ") must be >= -1 and block_size (" +
                                      std::to_string(options.block_size) + ") in 1..4096");
  }

  process_comm_ = options.process_comm;
  if (process_comm_ && process_comm_->size() != tp) {
    fail(StatusCode::kInvalidArg, "this run has " + std::to_string(process_comm_->size()) +
                                      " processes but the pack set in " + options.pack_dir +
                                      " has tp " + std::to_string(tp) +
                                      "; start it with mpirun -n " + std::to_string(tp));
  }
  process_rank_ = process_comm_ ? process_comm_->rank() : 0;
  if (process_comm_) process_comm_->set_timeout(options.comm_timeout_seconds);
  // In-process: every rank a thread of this process. As processes: this process's rank only.
  const int n_local = process_comm_ ? 1 : tp;
  if (!process_comm_) group_ = std::make_unique<ThreadGroup>(tp);
  for (int i = 0; i < n_local; ++i) {
    ranks_.push_back(std::make_unique<Rank>());
    ranks_.back()->rank = process_comm_ ? process_rank_ : i;
    ranks_.back()->index = i;
  }
  // Host ranks hold no thread-bound state, so the calling thread runs rank 0 itself (one
  // wake-up and hand-back less per step); device ranks keep a thread each (thread_group.h).
  threads_ = std::make_unique<RankThreads>(n_local, group_.get(), options.backend == "cpu");

  // Each rank thread maps only its own file.
  run_ranks([&](Rank& R) {
    R.pack = PackReader::open(set_.rank_paths[static_cast<size_t>(R.rank)]);
    const ParallelLayout& p = R.pack->parallel();
    if (p.tp_size != tp || p.tp_rank != R.rank) {
      fail(StatusCode::kFormat, R.pack->path() + ": manifest says rank " +
                                    std::to_string(p.tp_rank) + " of " + std::to_string(p.tp_size) +
                                    ", file name says rank " + std::to_string(R.rank) + " of " +
                                    std::to_string(tp));
    }
  });
  for (size_t i = 1; i < ranks_.size(); ++i) check_same_config(*ranks_[0]->pack, *ranks_[i]->pack);
  if (process_comm_) {  // every process must hold a rank of the same pack set
    const uint64_t mine = ranks_[0]->pack->pack_id();
    std::vector<uint64_t> ids(static_cast<size_t>(tp));
    process_comm_->all_gather(&mine, sizeof mine, ids.data(), ids.size() * sizeof(uint64_t));
    for (int r = 1; r < tp; ++r) {
      if (ids[static_cast<size_t>(r)] != ids[0]) {
        fail(StatusCode::kFormat,
             "rank " + std::to_string(r) +
                 " opened a rank file of another pack set than rank 0 "
                 "(pack ids differ); every process must read the same pack directory");
      }
    }
  }

  const ModelConfig& c = ranks_[0]->pack->config();
  n_ctx_ = options.n_ctx > 0
               ? options.n_ctx
               : std::min<int64_t>(c.max_position_embeddings > 0 ? c.max_position_embeddings : 4096,
                                   4096);
  chunk_ = std::min(options.max_batch_tokens, n_ctx_);

  // The plan for this device, before any weight is bound.
  std::vector<const PackReader*> packs;
  for (const auto& r : ranks_) packs.push_back(r->pack.get());
  RuntimePlanOptions po;
  po.backend = options.backend;
  po.mem_fraction = options.mem_fraction;
  po.n_ctx = n_ctx_;
  po.max_batch_tokens = chunk_;
  // The paged pool's dtype when there is one, else the per-sequence caches' f32.
  po.kv_dtype = options.kv_blocks != 0 ? options.kv_dtype : DType::kF32;
  plans_ = plan_for_device(packs, po);
  if (options.check_memory_plan) {
    for (size_t r = 0; r < plans_.size(); ++r) {
      if (!plans_[r].fits) {
        fail(StatusCode::kOom,
             "rank " + std::to_string(r) + " does not fit: " + plans_[r].shortfall_message());
      }
    }
  }

  kv_blocks_ = options.kv_blocks;
  if (kv_blocks_ < 0) {  // auto: what the plan leaves for KV, capped (engine.h)
    uint64_t budget_tokens = UINT64_MAX;
    for (const MemoryPlan& p : plans_) {
      // The plan's bytes per token are for its KV dtype; the pool holds options.kv_dtype.
      const uint64_t per_token =
          p.kv_bytes_per_token / dtype_size(p.kv_dtype) * dtype_size(options.kv_dtype);
      if (per_token > 0) budget_tokens = std::min(budget_tokens, p.kv_budget_bytes() / per_token);
    }
    const int64_t cap = (options.backend == "cpu" ? 2 : 16) * n_ctx_;
    int64_t tokens = static_cast<int64_t>(std::min<uint64_t>(budget_tokens, cap));
    // Device backends are planned against the pack's target, not the device in hand (the
    // backend holds the rank to its real memory through planned_bytes): at least one context.
    if (options.backend != "cpu" && tokens < n_ctx_) tokens = n_ctx_;
    // Whole blocks; one context always gets the blocks it needs when the budget holds it (a
    // context shorter than a block still gets one).
    const int64_t bs = options.block_size;
    kv_blocks_ = tokens / bs;
    if (tokens >= n_ctx_) kv_blocks_ = std::max(kv_blocks_, (n_ctx_ + bs - 1) / bs);
    if (kv_blocks_ < 1) {
      fail(StatusCode::kOom, "the memory plan leaves no room for a KV cache (" +
                                 std::to_string(tokens) +
                                 " tokens); use a smaller KV dtype or raise the memory fraction");
    }
  }
  if (process_comm_) {  // every process must size the same pool: the smallest wins
    std::vector<int64_t> all(static_cast<size_t>(tp));
    process_comm_->all_gather(&kv_blocks_, sizeof kv_blocks_, all.data(),
                              all.size() * sizeof(int64_t));
    kv_blocks_ = *std::min_element(all.begin(), all.end());
  }
  if (kv_blocks_ > 0 && kv_blocks_ * options.block_size < n_ctx_) {
    const int64_t pool = kv_blocks_ * options.block_size;
    if (options.n_ctx > 0) {
      fail(StatusCode::kOom, "the KV cache (" + std::to_string(pool) +
                                 " tokens: " + std::to_string(kv_blocks_) + " blocks of " +
                                 std::to_string(options.block_size) +
                                 ") cannot hold one context of n_ctx " + std::to_string(n_ctx_) +
                                 " tokens; lower n_ctx (--n-ctx, C ABI max_seq) or give the KV "
                                 "cache more memory (kv_cache_tokens, memory "
                                 "fraction, a smaller KV dtype)");
    }
    n_ctx_ = pool;  // the default context, clamped to what the pool holds
    chunk_ = std::min(chunk_, n_ctx_);
  }

  run_ranks([&](Rank& R) {
    BackendOptions bo;
    bo.n_threads = threads_per_rank_;
    bo.rank = R.rank;  // device backends: rank r on device r (modulo the device count)
    bo.n_ranks = tp;
    bo.devices = options.devices;
    bo.deterministic = options.deterministic;
    bo.activations = options.activations;
    bo.settings = options.backend_settings;
    const MemoryPlan& plan = plans_[static_cast<size_t>(R.index)];
    bo.mem_fraction = plan.mem_fraction;  // device backends hold their allocations to it
    const int64_t kv_tokens = kv_blocks_ > 0 ? kv_blocks_ * options.block_size : n_ctx_;
    bo.planned_bytes = plan.weight_bytes + plan.workspace_bytes + plan.reserve_bytes +
                       plan.kv_bytes_per_token * static_cast<uint64_t>(kv_tokens);
    R.backend = registry.create(options.backend, bo);
    // Device backends build their communicator (NCCL, ...) on the host one; host backends use
    // the host one itself.
    if (process_comm_) {
      R.host_comm = process_comm_;
    } else {
      R.host_comm = tp == 1 ? make_single_communicator() : group_->communicator(R.rank);
    }
    R.comm = R.backend->make_communicator(*R.host_comm);
    if (!R.comm) R.comm = R.host_comm;
    R.model = std::make_unique<Transformer>(*R.pack, *R.backend, *R.comm, chunk_);
    if (kv_blocks_ > 0) {
      R.kv_pool = std::make_unique<KvPool>(
          *R.backend, R.model->kv_pool_shape(kv_blocks_, options.block_size, options.kv_dtype));
    }
  });
  // Every rank's vocabulary shard, for placing gathered logits (the processes exchange theirs).
  vocab_start_.assign(static_cast<size_t>(tp), 0);
  vocab_local_.assign(static_cast<size_t>(tp), 0);
  for (const auto& r : ranks_) {
    vocab_start_[static_cast<size_t>(r->rank)] = r->model->layout().vocab_start;
    vocab_local_[static_cast<size_t>(r->rank)] = r->model->layout().n_vocab_local;
  }
  if (process_comm_) {
    const int64_t mine[2] = {ranks_[0]->model->layout().vocab_start,
                             ranks_[0]->model->layout().n_vocab_local};
    std::vector<int64_t> all(2 * static_cast<size_t>(tp));
    process_comm_->all_gather(mine, sizeof mine, all.data(), all.size() * sizeof(int64_t));
    for (int r = 0; r < tp; ++r) {
      vocab_start_[static_cast<size_t>(r)] = all[2 * static_cast<size_t>(r)];
      vocab_local_[static_cast<size_t>(r)] = all[2 * static_cast<size_t>(r) + 1];
    }
  }
  if (options.default_sequence && !process_comm_) default_seq_ = new_sequence_locked();
}

// The message rank 0 sends the other processes before each step (then the step's byte image).
struct Engine::StepHeader {
  static constexpr uint32_t kMagic = 0x53544550;  // "STEP"
  enum Kind : uint32_t { kStep = 1, kStop = 2 };
  uint32_t magic = kMagic;
  uint32_t kind = kStep;
  uint32_t gather_logits = 0;
  uint32_t pad = 0;
  uint64_t bytes = 0;
};

Engine::~Engine() {
  // Rank 0 of ranks as processes releases the others from serve_steps().
  if (process_comm_ && process_rank_ == 0 && !workers_stopped_ && !failed_) {
    try {
      StepHeader stop;
      stop.kind = StepHeader::kStop;
      send_to_workers(stop, {});
    } catch (...) {  // a dead peer: nothing more to tell it
    }
  }
}

void Engine::send_to_workers(const StepHeader& header, const std::vector<uint8_t>& bytes) {
  StepHeader h = header;
  h.bytes = bytes.size();
  process_comm_->broadcast(&h, sizeof h, 0);
  if (h.kind == StepHeader::kStop) {
    workers_stopped_ = true;
    return;
  }
  if (!bytes.empty()) {
    process_comm_->broadcast(const_cast<uint8_t*>(bytes.data()), bytes.size(), 0);
  }
}

void Engine::serve_steps() {
  if (!process_comm_ || process_rank_ == 0) {
    fail(StatusCode::kInvalidArg,
         "serve_steps() runs on ranks other than 0 of ranks as processes; rank 0 drives");
  }
  for (;;) {
    StepHeader h;
    process_comm_->set_timeout(0);  // idle until rank 0 has work, however long that is
    process_comm_->broadcast(&h, sizeof h, 0);
    process_comm_->set_timeout(options_.comm_timeout_seconds);
    if (h.magic != StepHeader::kMagic) {
      fail(StatusCode::kComm, "rank " + std::to_string(process_rank_) +
                                  ": rank 0 sent something that is not a step header");
    }
    if (h.kind == StepHeader::kStop) return;
    std::vector<uint8_t> bytes(static_cast<size_t>(h.bytes));
    if (!bytes.empty()) process_comm_->broadcast(bytes.data(), bytes.size(), 0);
    std::lock_guard<std::mutex> lock(mu_);
    check_usable();
    const StepInput step = deserialize(bytes);
    validate(step, step_limits());
    StepOutput unused;
    run_ranks([&](Rank& R) { run_step_on_rank(R, step, h.gather_logits != 0, unused); });
  }
}

const ModelConfig& Engine::config() const {
  return ranks_[0]->pack->config();
}
int Engine::tp_size() const {
  return set_.tp_size;
}

const PackReader& Engine::pack(int rank) const {
  if (rank < 0 || rank >= tp_size())
    fail(StatusCode::kInvalidArg, "no rank " + std::to_string(rank));
  for (const auto& r : ranks_) {
    if (r->rank == rank) return *r->pack;
  }
  if (rank == 0) return *ranks_[0]->pack;  // same config, tokenizer and plan inputs on every rank
  fail(StatusCode::kInvalidArg, "rank " + std::to_string(rank) +
                                    " runs in another process; this one maps only rank " +
                                    std::to_string(process_rank_));
}

uint64_t Engine::weight_bytes_in_place() const {
  uint64_t n = 0;
  for (const auto& r : ranks_) n += r->model->weights().bytes_in_place;
  return n;
}

uint64_t Engine::kv_bytes_per_sequence() const {
  // One full context (n_ctx tokens) in the paged pool's dtype, or the per-sequence f32 caches.
  const DType kv = kv_blocks_ > 0 ? options_.kv_dtype : DType::kF32;
  uint64_t n = 0;
  for (const auto& r : ranks_) {
    n += 2ull *
         static_cast<uint64_t>(config().n_layer * n_ctx_ * r->model->layout().n_head_kv_local *
                               config().head_dim) *
         dtype_size(kv);
  }
  return n;
}

uint64_t Engine::kv_pool_bytes() const {
  uint64_t n = 0;
  for (const auto& r : ranks_) n += r->kv_pool ? r->kv_pool->shape().bytes() : 0;
  return n;
}

int64_t Engine::n_past() const {
  std::lock_guard<std::mutex> lock(mu_);
  return default_seq().n_past();
}

EngineSequence& Engine::default_seq() const {
  if (!default_seq_) {
    fail(StatusCode::kInvalidArg,
         "this engine has no default sequence (EngineOptions::default_sequence is false)");
  }
  return *default_seq_;
}

std::unique_ptr<EngineSequence> Engine::new_sequence() {
  std::lock_guard<std::mutex> lock(mu_);
  check_usable();
  if (process_comm_) {
    fail(StatusCode::kUnsupported,
         "one-sequence KV caches run in-process only; ranks as processes serve through the step "
         "engine");
  }
  return new_sequence_locked();
}

std::unique_ptr<EngineSequence> Engine::new_sequence_locked() {
  std::unique_ptr<EngineSequence> seq(new EngineSequence());
  seq->n_ctx_ = n_ctx_;
  seq->caches_.resize(ranks_.size());
  // Each rank allocates on its own thread (its device). Errors are caught inside the rank so
  // the rank group is not aborted: a failed allocation (kOom) leaves the engine usable.
  std::vector<std::exception_ptr> errors(ranks_.size());
  run_ranks([&](Rank& R) {
    try {
      seq->caches_[static_cast<size_t>(R.index)] = R.model->make_cache(n_ctx_);
    } catch (...) {
      errors[static_cast<size_t>(R.index)] = std::current_exception();
    }
  });
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return seq;
}

uint64_t Engine::weight_bytes_copied() const {
  uint64_t n = 0;
  for (const auto& r : ranks_) n += r->model->weights().bytes_copied;
  return n;
}

uint64_t Engine::device_bytes_peak() const {
  uint64_t n = 0;
  for (const auto& r : ranks_) n += r->backend->device_bytes_peak();
  return n;
}

void Engine::check_usable() const {
  if (failed_) {
    fail(StatusCode::kInternal, "engine is unusable after an earlier error; create a new one");
  }
}

void Engine::run_ranks(const std::function<void(Rank&)>& fn) {
  try {
    threads_->run([&](int r) { fn(*ranks_[static_cast<size_t>(r)]); });
  } catch (...) {
    failed_ = true;
    throw;
  }
}

void Engine::check_ids(const EngineSequence& seq, std::span<const int32_t> ids) const {
  check_usable();
  if (ids.empty()) fail(StatusCode::kInvalidArg, "no tokens to evaluate");
  const int64_t n_vocab = config().n_vocab;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab) {
      fail(StatusCode::kInvalidArg,
           "token id " + std::to_string(id) + " outside vocabulary of " + std::to_string(n_vocab));
    }
  }
  if (seq.caches_.size() != ranks_.size()) {
    fail(StatusCode::kInvalidArg, "sequence does not belong to this engine");
  }
  if (seq.n_past_ + static_cast<int64_t>(ids.size()) > n_ctx_) {
    fail(StatusCode::kKvFull, "KV cache full: " + std::to_string(seq.n_past_) + " tokens held + " +
                                  std::to_string(ids.size()) + " new > n_ctx " +
                                  std::to_string(n_ctx_) + " (raise --n-ctx)");
  }
}

std::vector<float> Engine::eval(std::span<const int32_t> ids, bool all_logits) {
  std::lock_guard<std::mutex> lock(mu_);
  return eval_locked(default_seq(), ids, all_logits);
}

std::vector<float> Engine::eval(EngineSequence& seq, std::span<const int32_t> ids,
                                bool all_logits) {
  std::lock_guard<std::mutex> lock(mu_);
  return eval_locked(seq, ids, all_logits);
}

std::vector<float> Engine::eval_locked(EngineSequence& seq, std::span<const int32_t> ids,
                                       bool all_logits) {
  check_ids(seq, ids);
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t n_vocab = config().n_vocab;
  const int64_t n_rows = all_logits ? n : 1;
  std::vector<float> out(static_cast<size_t>(n_rows * n_vocab));
  run_ranks([&](Rank& R) {
    const int64_t chunk = R.model->max_batch_tokens();
    const int64_t v_local = R.model->layout().n_vocab_local;
    std::vector<float> gathered(static_cast<size_t>((all_logits ? chunk : 1) * n_vocab));
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t len = std::min(chunk, n - begin);
      const bool last = begin + len == n;
      R.backend->begin_forward(len);  // a device backend may run a decode step as a graph
      const Tensor logits =
          R.model->forward(ids.subspan(static_cast<size_t>(begin), static_cast<size_t>(len)),
                           *seq.caches_[static_cast<size_t>(R.rank)], all_logits);
      R.backend->end_forward();
      if (!all_logits && !last) continue;
      const int64_t rows = logits.dim(0);
      R.host_logits.resize(static_cast<size_t>(rows * v_local));
      R.backend->copy_to_host(R.host_logits.data(), logits, R.host_logits.size() * sizeof(float));
      // Gather [rank][rows][v_local_r] and transpose into [rows][n_vocab] on rank 0.
      R.comm->all_gather(R.host_logits.data(), R.host_logits.size() * sizeof(float),
                         gathered.data(), static_cast<size_t>(rows * n_vocab) * sizeof(float));
      if (R.rank != 0) continue;
      const int64_t row0 = all_logits ? begin : 0;
      const float* src = gathered.data();
      for (int r = 0; r < tp_size(); ++r) {
        const ParallelLayout& p = ranks_[static_cast<size_t>(r)]->model->layout();
        for (int64_t t = 0; t < rows; ++t) {
          std::memcpy(out.data() + (row0 + t) * n_vocab + p.vocab_start, src + t * p.n_vocab_local,
                      static_cast<size_t>(p.n_vocab_local) * sizeof(float));
        }
        src += rows * p.n_vocab_local;
      }
    }
  });
  seq.n_past_ += n;
  return out;
}

int32_t Engine::eval_argmax(std::span<const int32_t> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  return eval_argmax_locked(default_seq(), ids);
}

int32_t Engine::eval_argmax(EngineSequence& seq, std::span<const int32_t> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  return eval_argmax_locked(seq, ids);
}

int32_t Engine::eval_argmax_locked(EngineSequence& seq, std::span<const int32_t> ids) {
  check_ids(seq, ids);
  const int64_t n = static_cast<int64_t>(ids.size());
  struct Best {
    float value;
    int32_t id;
  };
  int32_t result = -1;
  run_ranks([&](Rank& R) {
    const int64_t chunk = R.model->max_batch_tokens();
    Tensor logits;
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t len = std::min(chunk, n - begin);
      R.backend->begin_forward(len);
      logits = R.model->forward(ids.subspan(static_cast<size_t>(begin), static_cast<size_t>(len)),
                                *seq.caches_[static_cast<size_t>(R.rank)], false);
      R.backend->end_forward();
    }
    const ParallelLayout& p = R.model->layout();
    // Found where the logits live: a device backend reads back one (value, index) pair.
    const Backend::MaxElement m = R.backend->max_element(logits);
    const Best mine{m.value, static_cast<int32_t>(p.vocab_start + m.index)};
    std::vector<Best> all(static_cast<size_t>(R.comm->size()));
    R.comm->all_gather(&mine, sizeof mine, all.data(), all.size() * sizeof(Best));
    if (R.rank != 0) return;
    Best best{-INFINITY, -1};
    for (const Best& b : all) {  // rank order = id order, so strict > keeps the lowest id
      if (b.id >= 0 && (best.id < 0 || b.value > best.value)) best = b;
    }
    result = best.id;
  });
  seq.n_past_ += n;
  return result;
}

StepLimits Engine::step_limits() const {
  StepLimits l;
  l.max_batch_tokens = chunk_;
  l.n_vocab = config().n_vocab;
  l.n_blocks = kv_blocks_;
  l.block_size = options_.block_size;
  l.max_position = n_ctx_;
  return l;
}

void Engine::attach_step_engine() {
  if (step_engine_attached_.exchange(true)) {
    fail(
        StatusCode::kInvalidArg,
        "this engine's KV pool already belongs to a step engine; destroy it before making another");
  }
}

void Engine::detach_step_engine() {
  step_engine_attached_.store(false);
}

const KvPoolShape& Engine::kv_pool_shape() const {
  if (!ranks_[0]->kv_pool) {
    fail(StatusCode::kInvalidArg, "this engine has no paged KV pool (EngineOptions::kv_blocks)");
  }
  return ranks_[0]->kv_pool->shape();
}

std::vector<uint8_t> Engine::read_kv_slots(int rank, std::span<const int64_t> slots) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (rank < 0 || rank >= static_cast<int>(ranks_.size()) ||
      !ranks_[static_cast<size_t>(rank)]->kv_pool) {
    fail(StatusCode::kInvalidArg,
         "read_kv_slots: rank " + std::to_string(rank) + " has no paged KV pool in this process");
  }
  Rank& R = *ranks_[static_cast<size_t>(rank)];
  const KvPoolShape& sh = R.kv_pool->shape();
  const size_t row = static_cast<size_t>(sh.n_head_kv_local * sh.head_dim) * dtype_size(sh.dtype);
  std::vector<uint8_t> layer(row * static_cast<size_t>(sh.n_slots()));
  std::vector<uint8_t> out;
  out.reserve(row * slots.size() * static_cast<size_t>(2 * sh.n_layer));
  for (int64_t l = 0; l < sh.n_layer; ++l) {
    for (const Tensor& t : {R.kv_pool->k(l), R.kv_pool->v(l)}) {
      R.backend->copy_to_host(layer.data(), t, layer.size());
      for (int64_t slot : slots) {
        if (slot < 0 || slot >= sh.n_slots()) {
          fail(StatusCode::kInvalidArg, "read_kv_slots: slot " + std::to_string(slot) +
                                            " outside the pool of " + std::to_string(sh.n_slots()));
        }
        const uint8_t* src = layer.data() + static_cast<size_t>(slot) * row;
        out.insert(out.end(), src, src + row);
      }
    }
  }
  return out;
}

StepOutput Engine::execute_step(const StepInput& step, bool gather_logits) {
  std::lock_guard<std::mutex> lock(mu_);
  check_usable();
  if (process_rank_ != 0) {
    fail(StatusCode::kInvalidArg,
         "rank " + std::to_string(process_rank_) + " does not drive; it runs serve_steps()");
  }
  kv_pool_shape();  // throws without a pool
  validate(step, step_limits());
  StepOutput out;
  out.argmax.assign(static_cast<size_t>(step.n_logits()), -1);
  if (gather_logits) out.logits.resize(static_cast<size_t>(step.n_logits() * config().n_vocab));
  if (process_comm_) {  // the other processes run the same step
    StepHeader h;
    h.gather_logits = gather_logits ? 1 : 0;
    send_to_workers(h, serialize(step));
  }
  run_ranks([&](Rank& R) { run_step_on_rank(R, step, gather_logits, out); });
  return out;
}

// One rank's part of a step: forward, then the gathered logits or the distributed argmax, which
// rank 0 assembles into `out`.
void Engine::run_step_on_rank(Rank& R, const StepInput& step, bool gather_logits, StepOutput& out) {
  struct Best {
    float value;
    int32_t id;
  };
  const int64_t n_out = step.n_logits();
  const int64_t n_vocab = config().n_vocab;
  R.backend->begin_forward(step.n_tokens());
  const Tensor logits = R.model->step(step, *R.kv_pool);
  R.backend->end_forward();
  if (n_out == 0) return;
  const ParallelLayout& p = R.model->layout();
  if (gather_logits) {
    R.host_logits.resize(static_cast<size_t>(n_out * p.n_vocab_local));
    R.backend->copy_to_host(R.host_logits.data(), logits, R.host_logits.size() * sizeof(float));
    std::vector<float> gathered(static_cast<size_t>(n_out * n_vocab));
    R.comm->all_gather(R.host_logits.data(), R.host_logits.size() * sizeof(float), gathered.data(),
                       gathered.size() * sizeof(float));
    if (R.rank != 0) return;
    const float* src = gathered.data();
    for (int r = 0; r < tp_size(); ++r) {
      const int64_t start = vocab_start_[static_cast<size_t>(r)];
      const int64_t local = vocab_local_[static_cast<size_t>(r)];
      for (int64_t t = 0; t < n_out; ++t) {
        std::memcpy(out.logits.data() + t * n_vocab + start, src + t * local,
                    static_cast<size_t>(local) * sizeof(float));
      }
      src += n_out * local;
    }
    for (int64_t t = 0; t < n_out; ++t) {
      const float* row = out.logits.data() + t * n_vocab;
      out.argmax[static_cast<size_t>(t)] =
          static_cast<int32_t>(std::max_element(row, row + n_vocab) - row);
    }
    return;
  }
  // Distributed argmax per row: each rank's best (value, id), the lowest id on ties.
  std::vector<Best> mine(static_cast<size_t>(n_out));
  for (int64_t t = 0; t < n_out; ++t) {
    const Backend::MaxElement m = R.backend->max_element(logits.slice_rows(t, 1));
    mine[static_cast<size_t>(t)] = {m.value, static_cast<int32_t>(p.vocab_start + m.index)};
  }
  std::vector<Best> all(static_cast<size_t>(n_out * R.comm->size()));
  R.comm->all_gather(mine.data(), mine.size() * sizeof(Best), all.data(),
                     all.size() * sizeof(Best));
  if (R.rank != 0) return;
  for (int64_t t = 0; t < n_out; ++t) {
    Best best{-INFINITY, -1};
    for (int r = 0; r < R.comm->size(); ++r) {  // rank order = id order
      const Best& b = all[static_cast<size_t>(r * n_out + t)];
      if (b.id >= 0 && (best.id < 0 || b.value > best.value)) best = b;
    }
    out.argmax[static_cast<size_t>(t)] = best.id;
  }
}

void Engine::seq_rm(int64_t pos) {
  std::lock_guard<std::mutex> lock(mu_);
  check_usable();
  EngineSequence& seq = default_seq();
  for (auto& c : seq.caches_) c->seq_rm(pos);
  seq.n_past_ = std::min(seq.n_past_, std::max<int64_t>(pos, 0));
}

void Engine::seq_rm(EngineSequence& seq, int64_t pos) {
  std::lock_guard<std::mutex> lock(mu_);
  check_usable();
  for (auto& c : seq.caches_) c->seq_rm(pos);
  seq.n_past_ = std::min(seq.n_past_, std::max<int64_t>(pos, 0));
}

}  // namespace shardlm
