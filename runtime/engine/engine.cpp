// Engine: pack-set opening, rank threads, chunked eval, gathered logits and distributed argmax.
#include "runtime/engine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include "runtime/backend/registry.h"
#include "runtime/comm/thread_group.h"
#include "runtime/core/status.h"
#include "runtime/engine/kv_cache.h"
#include "runtime/model/transformer.h"

namespace shardlm {

struct Engine::Rank {
  int rank = 0;
  std::unique_ptr<PackReader> pack;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<Transformer> model;
  std::unique_ptr<KvCache> cache;
  std::vector<float> host_logits;  // this rank's logits on the host
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

  group_ = std::make_unique<ThreadGroup>(tp);
  for (int r = 0; r < tp; ++r) {
    ranks_.push_back(std::make_unique<Rank>());
    ranks_.back()->rank = r;
  }
  threads_ = std::make_unique<RankThreads>(tp, group_.get());

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
  for (int r = 1; r < tp; ++r)
    check_same_config(*ranks_[0]->pack, *ranks_[static_cast<size_t>(r)]->pack);

  const ModelConfig& c = ranks_[0]->pack->config();
  max_seq_ = options.max_seq > 0
                 ? options.max_seq
                 : std::min<int64_t>(
                       c.max_position_embeddings > 0 ? c.max_position_embeddings : 4096, 4096);
  const int64_t chunk = std::min(options.max_batch_tokens, max_seq_);
  run_ranks([&](Rank& R) {
    BackendOptions bo;
    bo.n_threads = threads_per_rank_;
    bo.rank = R.rank;  // device backends: rank r on device r (modulo the device count)
    bo.n_ranks = tp;
    R.backend = registry.create(options.backend, bo);
    // Device backends bring their own communicator (NCCL, ...); host backends use the group's.
    R.comm = R.backend->make_communicator(*group_, R.rank);
    if (!R.comm) R.comm = tp == 1 ? make_single_communicator() : group_->communicator(R.rank);
    R.model = std::make_unique<Transformer>(*R.pack, *R.backend, *R.comm, chunk);
    R.cache = R.model->make_cache(max_seq_);
  });
}

Engine::~Engine() = default;

const ModelConfig& Engine::config() const {
  return ranks_[0]->pack->config();
}
int Engine::tp_size() const {
  return set_.tp_size;
}

const PackReader& Engine::pack(int rank) const {
  if (rank < 0 || rank >= tp_size())
    fail(StatusCode::kInvalidArg, "no rank " + std::to_string(rank));
  return *ranks_[static_cast<size_t>(rank)]->pack;
}

uint64_t Engine::weight_bytes_in_place() const {
  uint64_t n = 0;
  for (const auto& r : ranks_) n += r->model->weights().bytes_in_place;
  return n;
}

uint64_t Engine::weight_bytes_copied() const {
  uint64_t n = 0;
  for (const auto& r : ranks_) n += r->model->weights().bytes_copied;
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

void Engine::check_ids(std::span<const int32_t> ids) const {
  check_usable();
  if (ids.empty()) fail(StatusCode::kInvalidArg, "no tokens to evaluate");
  const int64_t n_vocab = config().n_vocab;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab) {
      fail(StatusCode::kInvalidArg,
           "token id " + std::to_string(id) + " outside vocabulary of " + std::to_string(n_vocab));
    }
  }
  if (n_past_ + static_cast<int64_t>(ids.size()) > max_seq_) {
    fail(StatusCode::kKvFull, "KV cache full: " + std::to_string(n_past_) + " tokens held + " +
                                  std::to_string(ids.size()) + " new > max_seq " +
                                  std::to_string(max_seq_) + " (raise --max-seq)");
  }
}

std::vector<float> Engine::eval(std::span<const int32_t> ids, bool all_logits) {
  check_ids(ids);
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t n_vocab = config().n_vocab;
  const int64_t n_rows = all_logits ? n : 1;
  std::vector<float> out(static_cast<size_t>(n_rows * n_vocab));
  run_ranks([&](Rank& R) {
    const int64_t chunk = R.model->max_tokens();
    const int64_t v_local = R.model->layout().n_vocab_local;
    std::vector<float> gathered(static_cast<size_t>(chunk * n_vocab));
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t len = std::min(chunk, n - begin);
      const bool last = begin + len == n;
      R.backend->begin_forward(len);  // a device backend may run a decode step as a graph
      const Tensor logits = R.model->forward(
          ids.subspan(static_cast<size_t>(begin), static_cast<size_t>(len)), *R.cache, all_logits);
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
  n_past_ += n;
  return out;
}

int32_t Engine::eval_argmax(std::span<const int32_t> ids) {
  check_ids(ids);
  const int64_t n = static_cast<int64_t>(ids.size());
  struct Best {
    float value;
    int32_t id;
  };
  int32_t result = -1;
  run_ranks([&](Rank& R) {
    const int64_t chunk = R.model->max_tokens();
    Tensor logits;
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t len = std::min(chunk, n - begin);
      R.backend->begin_forward(len);
      logits = R.model->forward(ids.subspan(static_cast<size_t>(begin), static_cast<size_t>(len)),
                                *R.cache, false);
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
  n_past_ += n;
  return result;
}

void Engine::seq_rm(int64_t pos) {
  check_usable();
  for (auto& r : ranks_) r->cache->seq_rm(pos);
  n_past_ = std::min(n_past_, std::max<int64_t>(pos, 0));
}

}  // namespace shardlm
