// The in-process tensor-parallel engine: finds a pack set, starts one thread per rank, and on
// each rank opens and mmaps only that rank's file, creates its backend, communicator (threads,
// or single at tp = 1), model and pre-allocated KV cache. Feeding tokens runs every rank's
// forward together; logits come back gathered from all ranks, or as a distributed argmax.
// One sequence at a time; chunked prefill by max_batch_tokens. Not a scheduler or sampler.
// Errors inside a rank are rethrown to the caller; after one the engine refuses further work.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/pack_reader.h"

namespace shardlm {

class ThreadGroup;
class RankThreads;

struct EngineOptions {
  std::string pack_dir;
  int tp = 0;  // expected tp_size; 0 accepts the pack set's
  std::string backend = "cpu";
  int n_threads = 0;               // compute threads across all ranks; 0 = hardware concurrency
  int64_t max_seq = 0;             // KV capacity in tokens; 0 = min(max_position_embeddings, 4096)
  int64_t max_batch_tokens = 256;  // tokens per forward (prefill chunk)
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
  int64_t max_seq() const { return max_seq_; }
  int64_t n_past() const { return n_past_; }  // tokens in the KV cache
  const PackReader& pack(int rank) const;     // rank's mapped pack (tokenizer files, plan, ...)
  uint64_t weight_bytes_in_place() const;     // summed over ranks
  uint64_t weight_bytes_copied() const;

  // Appends `ids` to the sequence and returns logits gathered over the vocabulary:
  // [n_tokens, n_vocab] row-major when all_logits, else [n_vocab] for the last token.
  // Throws Error(kKvFull) (engine still usable) when the tokens do not fit.
  std::vector<float> eval(std::span<const int32_t> ids, bool all_logits);
  // Appends `ids` and returns the argmax of the last token's logits (ties: lowest id), reduced
  // across ranks without gathering the logits.
  int32_t eval_argmax(std::span<const int32_t> ids);
  // Forgets the sequence (positions >= pos; 0 = all).
  void seq_rm(int64_t pos = 0);

 private:
  struct Rank;
  void check_usable() const;
  void check_ids(std::span<const int32_t> ids) const;
  void run_ranks(const std::function<void(Rank&)>& fn);

  EngineOptions options_;
  PackSet set_;
  int threads_per_rank_ = 1;
  int64_t max_seq_ = 0;
  int64_t n_past_ = 0;
  bool failed_ = false;
  std::unique_ptr<ThreadGroup> group_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::unique_ptr<RankThreads> threads_;  // last: joined first
};

}  // namespace shardlm
