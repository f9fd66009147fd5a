// The in-process tensor-parallel engine: finds a pack set, runs its ranks side by side (each on a
// thread of its own, except that on the CPU backend the calling thread runs rank 0: RankThreads),
// and on each rank opens and mmaps only that rank's file, creates its backend, communicator
// (threads, or single at tp = 1), model and pre-allocated KV cache. Feeding tokens runs every
// rank's forward together; logits come back gathered from all ranks, or as a distributed argmax.
// Sequences: the engine owns a default sequence (the eval()/seq_rm() overloads without one) and
// new_sequence() makes more, each with its own KV cache on every rank (a chat session owns one).
// Thread safety: every method that runs the ranks (eval, eval_argmax, seq_rm, new_sequence) takes
// one engine-wide mutex, so calls from several threads are serialized forward by forward; one
// sequence must not be used by two threads at once. Chunked prefill by max_batch_tokens.
// Not a scheduler (no batching of sequences) and not a sampler (sampler.h, generation.h).
// Before any weight is bound, the memory plan is recomputed for the real device (runtime_plan.h)
// and, when asked, a plan that does not fit is refused.
// Errors inside a rank are rethrown to the caller; after one the engine refuses further work.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "formats/pack_reader.h"
#include "runtime/backend/backend.h"
#include "runtime/model/kv_pool.h"
#include "runtime/model/step_input.h"

namespace shardlm {

class Communicator;
class ThreadGroup;
class RankThreads;
class KvCache;

struct EngineOptions {
  std::string pack_dir;
  int tp = 0;  // expected tp_size; 0 accepts the pack set's
  std::string backend = "cpu";
  int n_threads = 0;  // compute threads across all ranks; 0 = hardware concurrency
  int64_t n_ctx = 0;  // context length in tokens; 0 = min(max_position_embeddings, 4096)
  int64_t max_batch_tokens = 256;  // tokens per forward (prefill chunk)
  std::vector<int> devices;        // device backends: rank r on devices[r % size]; empty = all
  double mem_fraction = 0;         // memory-plan fraction on this device; 0 = the pack's
  bool check_memory_plan = false;  // refuse with Error(kOom) when the recomputed plan does not fit
  bool default_sequence = true;    // allocate the default sequence's KV cache
  // The paged KV pool of the step engine (execute_step): blocks per rank (0 = no pool, -1 =
  // auto: the KV budget the memory plan leaves, capped at 2 contexts (n_ctx) on the cpu
  // backend and 16 on device backends; when that cannot hold one context, a default n_ctx is
  // clamped to it and an explicit one refused with kOom), tokens per block and element type.
  // Allocated once here, never per sequence.
  int64_t kv_blocks = -1;
  int64_t block_size = 16;
  DType kv_dtype = DType::kBF16;
  // CPU: a sequence's logits do not depend on what it is batched with (BackendOptions).
  bool deterministic = false;
  // Matmuls with bf16 weights: exact f32 activations, rounded to bf16, or auto (bf16 where the
  // CPU multiplies bf16 natively; BackendOptions).
  MatmulActivations activations = MatmulActivations::kAuto;
  // Backend-specific settings ("isa", "graphs", ...; see each backend's header).
  std::vector<BackendSetting> backend_settings;
  // Ranks as processes (mpirun): this process runs only rank process_comm->rank() of the pack
  // set, mapping only its own rank file, and joins the others over process_comm (the MPI
  // communicator; its size must equal the pack's tp). Rank 0 drives: execute_step() sends each
  // step to the other ranks, which run serve_steps() until rank 0's Engine is destroyed. The
  // one-sequence calls (eval, new_sequence) are in-process only. Null: every rank is a thread
  // of this process.
  std::shared_ptr<Communicator> process_comm;
  // Ranks as processes: a collective waiting longer than this for the other processes gives up
  // with Error(kComm) (a dead or hung rank); 0 = wait for ever. Workers waiting for rank 0's
  // next step wait for ever (a user may be thinking).
  double comm_timeout_seconds = 60;
};

// What one step returns to the driver, for each of its logits_rows in order.
struct StepOutput {
  std::vector<int32_t> argmax;  // [n_logits] greedy id of each row (ties: lowest id)
  std::vector<float> logits;    // [n_logits, n_vocab] when gathered, else empty
};

class Engine;

// One sequence's KV cache on every rank. Made by Engine::new_sequence(); must not outlive it.
class EngineSequence {
 public:
  ~EngineSequence();
  int64_t n_past() const { return n_past_; }  // tokens in the KV cache
  int64_t n_ctx() const { return n_ctx_; }

 private:
  friend class Engine;
  EngineSequence() = default;
  std::vector<std::unique_ptr<KvCache>> caches_;  // index = rank
  int64_t n_past_ = 0;
  int64_t n_ctx_ = 0;
};

class Engine {
 public:
  // Throws Error(kIo/kFormat/kInvalidArg) for a bad pack set (missing rank, ranks of different
  // packs, tp different from options.tp), naming the directory or file.
  explicit Engine(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelConfig& config() const;
  int tp_size() const;
  int threads_per_rank() const { return threads_per_rank_; }
  int64_t n_ctx() const { return n_ctx_; }
  bool deterministic() const { return options_.deterministic; }
  int64_t max_batch_tokens() const { return chunk_; }
  int64_t kv_blocks() const { return kv_blocks_; }  // the paged pool's blocks per rank (0: none)
  int64_t n_past() const;                           // tokens in the default sequence's KV cache
  const PackReader& pack(int rank) const;  // rank's mapped pack (tokenizer files, plan, ...)
  uint64_t weight_bytes_in_place() const;  // summed over ranks
  uint64_t weight_bytes_copied() const;
  // The device memory every rank's backend held at its peak, summed (0 on host backends).
  uint64_t device_bytes_peak() const;
  const std::string& backend_name() const { return options_.backend; }
  // The memory plan of every rank recomputed for this device and these options (index = rank),
  // as computed before the weights were bound.
  const std::vector<MemoryPlan>& memory_plan() const { return plans_; }
  // KV bytes one full context (n_ctx tokens) takes over all ranks: in the paged pool's dtype
  // when there is a pool, else the per-sequence f32 caches.
  uint64_t kv_bytes_per_sequence() const;
  // The paged KV pool over all ranks (0 without one).
  uint64_t kv_pool_bytes() const;

  // A new sequence with its own KV cache of n_ctx() tokens on every rank.
  std::unique_ptr<EngineSequence> new_sequence();

  // Appends `ids` to the sequence and returns logits gathered over the vocabulary:
  // [n_tokens, n_vocab] row-major when all_logits, else [n_vocab] for the last token.
  // Throws Error(kKvFull) (engine still usable) when the tokens do not fit.
  std::vector<float> eval(std::span<const int32_t> ids, bool all_logits);
  std::vector<float> eval(EngineSequence& seq, std::span<const int32_t> ids, bool all_logits);
  // Appends `ids` and returns the argmax of the last token's logits (ties: lowest id), reduced
  // across ranks without gathering the logits.
  int32_t eval_argmax(std::span<const int32_t> ids);
  int32_t eval_argmax(EngineSequence& seq, std::span<const int32_t> ids);
  // The step engine's entry: runs `step` on every rank against the paged KV pool (kv_blocks
  // must be > 0) and returns the argmax of every logits row, and the rows' full logits when
  // `gather_logits`. Throws Error(kInvalidArg) for a malformed step (validate()), before any
  // rank runs. Not thread-safe against itself: one driver calls it.
  StepOutput execute_step(const StepInput& step, bool gather_logits);
  StepLimits step_limits() const;
  // The one StepEngine that owns the pool's bookkeeping registers here (two would hand out the
  // same blocks). Throws Error(kInvalidArg) when one is attached already.
  void attach_step_engine();
  void detach_step_engine();
  const KvPoolShape& kv_pool_shape() const;  // rank 0's (the others differ only when kv heads do)
  // Inspection (tests): the bytes of K then V of every layer at `slots` of an in-process rank's
  // pool, in the pool's dtype: [n_layer][K, V][slots][n_head_kv_local * head_dim].
  std::vector<uint8_t> read_kv_slots(int rank, std::span<const int64_t> slots) const;

  // Ranks as processes (EngineOptions::process_comm): this process's rank, and whether it
  // drives (rank 0, or every in-process engine).
  int process_rank() const { return process_rank_; }
  bool drives() const { return process_rank_ == 0; }
  // On a rank other than 0: runs the steps rank 0 sends until rank 0's engine shuts down (then
  // returns) or fails (throws Error naming what happened). Throws Error(kInvalidArg) on rank 0
  // or in-process.
  void serve_steps();

  // Forgets the sequence (positions >= pos; 0 = all).
  void seq_rm(int64_t pos = 0);
  void seq_rm(EngineSequence& seq, int64_t pos);

 private:
  struct Rank;
  struct StepHeader;
  void run_step_on_rank(Rank& R, const StepInput& step, bool gather_logits, StepOutput& out);
  void send_to_workers(const StepHeader& header, const std::vector<uint8_t>& bytes);
  void check_usable() const;
  void check_ids(const EngineSequence& seq, std::span<const int32_t> ids) const;
  EngineSequence& default_seq() const;
  void run_ranks(const std::function<void(Rank&)>& fn);
  std::vector<float> eval_locked(EngineSequence& seq, std::span<const int32_t> ids,
                                 bool all_logits);
  int32_t eval_argmax_locked(EngineSequence& seq, std::span<const int32_t> ids);
  std::unique_ptr<EngineSequence> new_sequence_locked();

  EngineOptions options_;
  PackSet set_;
  int threads_per_rank_ = 1;
  int64_t n_ctx_ = 0;
  int64_t chunk_ = 0;
  int64_t kv_blocks_ = 0;
  std::atomic<bool> step_engine_attached_{false};
  std::vector<MemoryPlan> plans_;
  bool failed_ = false;
  mutable std::mutex mu_;                       // serializes everything that runs the ranks
  std::shared_ptr<Communicator> process_comm_;  // ranks as processes; null in-process
  int process_rank_ = 0;
  bool workers_stopped_ = false;
  // Every rank's vocabulary shard (index = rank), for placing gathered logits.
  std::vector<int64_t> vocab_start_, vocab_local_;
  std::unique_ptr<ThreadGroup> group_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::unique_ptr<EngineSequence> default_seq_;  // after ranks_: freed before the backends
  std::unique_ptr<RankThreads> threads_;         // joined before the ranks are destroyed
};

}  // namespace shardlm
