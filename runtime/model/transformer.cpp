// The tensor-parallel decoder forward.
#include "runtime/model/transformer.h"

#include <cmath>
#include <string>

#include "runtime/core/status.h"
#include "runtime/model/rope_freqs.h"

namespace shardlm {

Transformer::Transformer(const PackReader& pack, Backend& backend, Communicator& comm,
                         int64_t max_tokens)
    : pack_(pack),
      backend_(backend),
      comm_(comm),
      config_(pack.config()),
      layout_(pack.parallel()),
      spec_(family_spec(config_, pack.path())),
      weights_(bind_weights(pack, spec_, backend)),
      max_tokens_(max_tokens) {
  if (layout_.tp_size != comm.size() || layout_.tp_rank != comm.rank()) {
    fail(StatusCode::kInvalidArg,
         pack.path() + ": pack is rank " + std::to_string(layout_.tp_rank) + " of " +
             std::to_string(layout_.tp_size) + " but runs as rank " + std::to_string(comm.rank()) +
             " of " + std::to_string(comm.size()));
  }
  if (max_tokens <= 0) fail(StatusCode::kInvalidArg, "max_tokens per forward must be positive");
  const int64_t T = max_tokens, E = config_.n_embd, D = config_.head_dim;
  q_dim_local_ = layout_.n_head_local * D;
  kv_dim_local_ = layout_.n_head_kv_local * D;
  auto alloc = [&](std::initializer_list<int64_t> shape) {
    scratch_.emplace_back();
    return backend_.allocate_tensor(DType::kF32, shape, MemoryKind::kScratch, scratch_.back());
  };
  inv_freq_ = alloc({D / 2});
  const std::vector<float> inv = rope_inv_freq(config_);
  backend_.copy_from_host(inv_freq_, inv.data(), inv.size() * sizeof(float));
  x_ = alloc({T, E});
  h_ = alloc({T, E});
  qkv_ = alloc({T, q_dim_local_ + 2 * kv_dim_local_});
  q_ = alloc({T, layout_.n_head_local, D});
  attn_ = alloc({T, q_dim_local_});
  proj_ = alloc({T, E});
  gate_up_ = alloc({T, 2 * layout_.n_ff_local});
  act_ = alloc({T, layout_.n_ff_local});
  logits_ = backend_.allocate_tensor(DType::kF32, {1, layout_.n_vocab_local}, MemoryKind::kScratch,
                                     logits_buf_);
}

std::unique_ptr<KvCache> Transformer::make_cache(int64_t max_seq) const {
  return std::make_unique<KvCache>(backend_, config_.n_layer, max_seq, layout_.n_head_kv_local,
                                   config_.head_dim);
}

void Transformer::attention_block(int64_t l, int64_t n, std::span<const int32_t> pos,
                                  KvCache& cache) {
  const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
  const int64_t D = config_.head_dim;
  const int64_t past = cache.n_past();
  backend_.rms_norm(rows(x_, n), L.attn_norm, config_.rms_norm_eps, rows(h_, n));
  backend_.matmul(rows(h_, n), L.wqkv, L.bqkv, rows(qkv_, n));

  // Split the fused projection: q to scratch, k and v straight into the cache rows.
  const Tensor q = rows(q_, n);
  const Tensor k_new = cache.k(l).slice_rows(past, n);  // [n, n_head_kv_local, head_dim]
  const Tensor v_new = cache.v(l).slice_rows(past, n);
  const Tensor qkv = rows(qkv_, n);
  backend_.copy_columns(qkv, 0, q);
  backend_.copy_columns(qkv, q_dim_local_, k_new);
  backend_.copy_columns(qkv, q_dim_local_ + kv_dim_local_, v_new);

  if (spec_.qk_norm) {  // Qwen3: RMSNorm over head_dim of every q and k head, before RoPE
    backend_.rms_norm(q, L.q_norm, config_.rms_norm_eps, q);
    backend_.rms_norm(k_new, L.k_norm, config_.rms_norm_eps, k_new);
  }
  backend_.rope(q, pos, inv_freq_);
  backend_.rope(k_new, pos, inv_freq_);

  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  backend_.attention(q, cache.k(l).slice_rows(0, past + n), cache.v(l).slice_rows(0, past + n), pos,
                     spec_.sliding_window, scale, rows(attn_, n));

  // Row-parallel o_proj: partial sums on every rank, bias once (rank 0), then all-reduce #1.
  backend_.matmul(rows(attn_, n), L.wo, L.bo, rows(proj_, n));
  comm_.all_reduce_sum(proj_.as<float>(), n * config_.n_embd);
  backend_.add(rows(x_, n), rows(proj_, n));
}

void Transformer::mlp_block(int64_t l, int64_t n) {
  const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
  backend_.rms_norm(rows(x_, n), L.ffn_norm, config_.rms_norm_eps, rows(h_, n));
  backend_.matmul(rows(h_, n), L.w_gate_up, Tensor{}, rows(gate_up_, n));
  backend_.swiglu(rows(gate_up_, n), rows(act_, n));
  // Row-parallel down projection, then all-reduce #2.
  backend_.matmul(rows(act_, n), L.w_down, Tensor{}, rows(proj_, n));
  comm_.all_reduce_sum(proj_.as<float>(), n * config_.n_embd);
  backend_.add(rows(x_, n), rows(proj_, n));
}

Tensor Transformer::forward(std::span<const int32_t> ids, KvCache& cache, bool all_logits) {
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n <= 0 || n > max_tokens_) {
    fail(StatusCode::kInvalidArg, "forward of " + std::to_string(n) + " tokens (1.." +
                                      std::to_string(max_tokens_) + " allowed)");
  }
  for (int32_t id : ids) {
    if (id < 0 || id >= config_.n_vocab) {
      fail(StatusCode::kInvalidArg, "token id " + std::to_string(id) + " outside vocabulary of " +
                                        std::to_string(config_.n_vocab));
    }
  }
  cache.check_room(n);
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t)
    pos[static_cast<size_t>(t)] = static_cast<int32_t>(cache.n_past() + t);

  // Vocab-parallel embedding: each rank fills the rows it owns, the all-reduce completes them.
  backend_.embed(ids, weights_.tok_embd, layout_.vocab_start, rows(x_, n));
  comm_.all_reduce_sum(x_.as<float>(), n * config_.n_embd);

  for (int64_t l = 0; l < config_.n_layer; ++l) {
    attention_block(l, n, pos, cache);
    mlp_block(l, n);
  }
  cache.advance(n);

  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t n_out = n - first;
  if (logits_.dim(0) < n_out) {
    logits_ = backend_.allocate_tensor(DType::kF32, {n_out, layout_.n_vocab_local},
                                       MemoryKind::kScratch, logits_buf_);
  }
  const Tensor hn = h_.slice_rows(0, n_out);
  backend_.rms_norm(x_.slice_rows(first, n_out), weights_.output_norm, config_.rms_norm_eps, hn);
  const Tensor logits = logits_.slice_rows(0, n_out);
  backend_.matmul(hn, weights_.output, Tensor{}, logits);
  return logits;
}

}  // namespace shardlm
