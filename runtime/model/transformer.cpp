// The tensor-parallel decoder forward.
#include "runtime/model/transformer.h"

#include <cmath>
#include <string>

#include "runtime/core/status.h"
#include "runtime/model/rope_freqs.h"

namespace shardlm {

Transformer::Transformer(const PackReader& pack, Backend& backend, Communicator& comm,
                         int64_t max_batch_tokens)
    : backend_(backend),
      comm_(comm),
      config_(pack.config()),
      layout_(pack.parallel()),
      spec_(family_spec(config_, pack.path())),
      weights_(bind_weights(pack, spec_, backend)),
      max_tokens_(max_batch_tokens) {
  if (layout_.tp_size != comm.size() || layout_.tp_rank != comm.rank()) {
    fail(StatusCode::kInvalidArg,
         pack.path() + ": pack is rank " + std::to_string(layout_.tp_rank) + " of " +
             std::to_string(layout_.tp_size) + " but runs as rank " + std::to_string(comm.rank()) +
             " of " + std::to_string(comm.size()));
  }
  if (max_batch_tokens <= 0) fail(StatusCode::kInvalidArg, "max_batch_tokens per forward must be positive");
  const int64_t T = max_batch_tokens, E = config_.n_embd, D = config_.head_dim;
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
  k_new_ = alloc({T, layout_.n_head_kv_local, D});
  v_new_ = alloc({T, layout_.n_head_kv_local, D});
  attn_ = alloc({T, q_dim_local_});
  proj_ = alloc({T, E});
  gate_up_ = alloc({T, 2 * layout_.n_ff_local});
  act_ = alloc({T, layout_.n_ff_local});
  logits_ = backend_.allocate_tensor(DType::kF32, {1, layout_.n_vocab_local}, MemoryKind::kScratch,
                                     logits_buf_);
}

std::unique_ptr<KvCache> Transformer::make_cache(int64_t n_ctx) const {
  return std::make_unique<KvCache>(backend_, config_.n_layer, n_ctx, layout_.n_head_kv_local,
                                   config_.head_dim);
}

void Transformer::project_qkv(int64_t l, int64_t n, std::span<const int32_t> pos, const Tensor& q,
                              const Tensor& k, const Tensor& v) {
  const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
  backend_.rms_norm(rows(x_, n), L.attn_norm, config_.rms_norm_eps, rows(h_, n));
  backend_.matmul(rows(h_, n), L.wqkv, L.bqkv, rows(qkv_, n));
  const Tensor qkv = rows(qkv_, n);  // the fused projection, split
  backend_.copy_columns(qkv, 0, q);
  backend_.copy_columns(qkv, q_dim_local_, k);
  backend_.copy_columns(qkv, q_dim_local_ + kv_dim_local_, v);
  if (spec_.qk_norm) {  // Qwen3: RMSNorm over head_dim of every q and k head, before RoPE
    backend_.rms_norm(q, L.q_norm, config_.rms_norm_eps, q);
    backend_.rms_norm(k, L.k_norm, config_.rms_norm_eps, k);
  }
  backend_.rope(q, pos, inv_freq_);
  backend_.rope(k, pos, inv_freq_);
}

void Transformer::attention_block(int64_t l, int64_t n, std::span<const int32_t> pos,
                                  KvCache& cache) {
  const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
  const int64_t D = config_.head_dim;
  const int64_t past = cache.n_past();
  // k and v go straight into the cache rows.
  const Tensor q = rows(q_, n);
  project_qkv(l, n, pos, q, cache.k(l).slice_rows(past, n), cache.v(l).slice_rows(past, n));

  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  backend_.attention(q, cache.k(l).slice_rows(0, past + n), cache.v(l).slice_rows(0, past + n), pos,
                     spec_.sliding_window, scale, rows(attn_, n));

  // Row-parallel o_proj: partial sums on every rank, bias once (rank 0), then all-reduce #1.
  backend_.matmul(rows(attn_, n), L.wo, L.bo, rows(proj_, n));
  comm_.all_reduce_sum(proj_.as<float>(), n * config_.n_embd, proj_.space);
  backend_.add(rows(x_, n), rows(proj_, n));
}

KvPoolShape Transformer::kv_pool_shape(int64_t n_blocks, int64_t block_size,
                                       DType kv_dtype) const {
  KvPoolShape s;
  s.n_layer = config_.n_layer;
  s.n_blocks = n_blocks;
  s.block_size = block_size;
  s.n_head_kv_local = layout_.n_head_kv_local;
  s.head_dim = config_.head_dim;
  s.dtype = kv_dtype;
  return s;
}

void Transformer::paged_attention_block(int64_t l, const StepInput& step, KvPool& kv) {
  const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
  const int64_t n = step.n_tokens(), D = config_.head_dim;
  const std::span<const int32_t> pos(step.positions);
  const Tensor q = rows(q_, n), k_new = rows(k_new_, n), v_new = rows(v_new_, n);
  project_qkv(l, n, pos, q, k_new, v_new);
  backend_.store_kv(k_new, v_new, step.slot_mapping, kv.k(l), kv.v(l));

  StepLayout layout;
  layout.positions = pos;
  layout.seq_starts = step.seq_starts;
  layout.block_table = step.block_table;
  layout.max_blocks = step.max_blocks;
  layout.block_size = kv.shape().block_size;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  backend_.paged_attention(q, kv.k(l), kv.v(l), layout, spec_.sliding_window, scale,
                           rows(attn_, n));

  backend_.matmul(rows(attn_, n), L.wo, L.bo, rows(proj_, n));
  comm_.all_reduce_sum(proj_.as<float>(), n * config_.n_embd, proj_.space);
  backend_.add(rows(x_, n), rows(proj_, n));
}

Tensor Transformer::step(const StepInput& step, KvPool& kv) {
  const int64_t n = step.n_tokens();
  if (n <= 0 || n > max_tokens_) {
    fail(StatusCode::kInvalidArg, "step of " + std::to_string(n) + " tokens (1.." +
                                      std::to_string(max_tokens_) + " allowed)");
  }
  if (kv.shape().n_layer != config_.n_layer ||
      kv.shape().n_head_kv_local != layout_.n_head_kv_local ||
      kv.shape().head_dim != config_.head_dim) {
    fail(StatusCode::kInvalidArg, "KV pool shape does not match the model");
  }
  backend_.embed(step.tokens, weights_.tok_embd, layout_.vocab_start, rows(x_, n));
  comm_.all_reduce_sum(x_.as<float>(), n * config_.n_embd, x_.space);
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    paged_attention_block(l, step, kv);
    mlp_block(l, n);
  }
  return logits_of_rows(step.logits_rows);
}

Tensor Transformer::logits_of_rows(std::span<const int32_t> rows_wanted) {
  const int64_t n_out = static_cast<int64_t>(rows_wanted.size());
  if (n_out == 0) return Tensor{};
  if (logits_.dim(0) < n_out) {
    logits_ = backend_.allocate_tensor(DType::kF32, {n_out, layout_.n_vocab_local},
                                       MemoryKind::kScratch, logits_buf_);
  }
  // Final norm of the wanted rows only, packed into the first n_out rows of h_.
  for (int64_t i = 0; i < n_out; ++i) {
    backend_.rms_norm(x_.slice_rows(rows_wanted[static_cast<size_t>(i)], 1), weights_.output_norm,
                      config_.rms_norm_eps, h_.slice_rows(i, 1));
  }
  const Tensor logits = logits_.slice_rows(0, n_out);
  backend_.matmul(h_.slice_rows(0, n_out), weights_.output, Tensor{}, logits);
  return logits;
}

void Transformer::mlp_block(int64_t l, int64_t n) {
  const LayerWeights& L = weights_.layers[static_cast<size_t>(l)];
  backend_.rms_norm(rows(x_, n), L.ffn_norm, config_.rms_norm_eps, rows(h_, n));
  backend_.matmul(rows(h_, n), L.w_gate_up, Tensor{}, rows(gate_up_, n));
  backend_.swiglu(rows(gate_up_, n), rows(act_, n));
  // Row-parallel down projection, then all-reduce #2.
  backend_.matmul(rows(act_, n), L.w_down, Tensor{}, rows(proj_, n));
  comm_.all_reduce_sum(proj_.as<float>(), n * config_.n_embd, proj_.space);
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
  comm_.all_reduce_sum(x_.as<float>(), n * config_.n_embd, x_.space);

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
