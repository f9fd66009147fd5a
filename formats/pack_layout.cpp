// The per-rank tensor list (see tensor_names.h for the table it implements).
#include "formats/pack_layout.h"

#include "formats/tensor_names.h"

namespace shardlm {

const char* split_kind_name(SplitKind s) {
  switch (s) {
    case SplitKind::kReplicated: return "replicated";
    case SplitKind::kColumn: return "column";
    case SplitKind::kRow: return "row";
    case SplitKind::kVocab: return "vocab";
    case SplitKind::kFirstRank: return "first-rank";
  }
  return "?";
}

std::vector<PackTensorSpec> pack_tensor_specs(const ModelConfig& c, const ParallelLayout& p, DType wt,
                                              DType et) {
  namespace tn = tensor_names;
  std::vector<PackTensorSpec> out;
  auto add = [&](std::string name, DType dt, std::vector<int64_t> shape, std::vector<int64_t> global, SplitKind split,
                 int axis) { out.push_back({std::move(name), dt, std::move(shape), std::move(global), split, axis}); };
  const DType f32 = DType::kF32;
  const int64_t qkv_local = (p.n_head_local + 2 * p.n_head_kv_local) * c.head_dim;
  const int64_t qkv_global = (c.n_head + 2 * c.n_head_kv) * c.head_dim;

  add(tn::kTokEmbd, et, {p.n_vocab_local, c.n_embd}, {c.n_vocab, c.n_embd}, SplitKind::kVocab, 0);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    add(tn::blk(l, tn::kAttnNorm), f32, {c.n_embd}, {c.n_embd}, SplitKind::kReplicated, -1);
    add(tn::blk(l, tn::kWqkv), wt, {qkv_local, c.n_embd}, {qkv_global, c.n_embd}, SplitKind::kColumn, 0);
    if (c.attention_bias) add(tn::blk(l, tn::kBqkv), f32, {qkv_local}, {qkv_global}, SplitKind::kColumn, 0);
    if (c.qk_norm) {
      add(tn::blk(l, tn::kQNorm), f32, {c.head_dim}, {c.head_dim}, SplitKind::kReplicated, -1);
      add(tn::blk(l, tn::kKNorm), f32, {c.head_dim}, {c.head_dim}, SplitKind::kReplicated, -1);
    }
    add(tn::blk(l, tn::kWo), wt, {c.n_embd, p.n_head_local * c.head_dim}, {c.n_embd, c.n_head * c.head_dim},
        SplitKind::kRow, 1);
    if (c.o_proj_bias && p.tp_rank == 0) add(tn::blk(l, tn::kBo), f32, {c.n_embd}, {c.n_embd}, SplitKind::kFirstRank, -1);
    add(tn::blk(l, tn::kFfnNorm), f32, {c.n_embd}, {c.n_embd}, SplitKind::kReplicated, -1);
    add(tn::blk(l, tn::kWGateUp), wt, {2 * p.n_ff_local, c.n_embd}, {2 * c.n_ff, c.n_embd}, SplitKind::kColumn, 0);
    add(tn::blk(l, tn::kWDown), wt, {c.n_embd, p.n_ff_local}, {c.n_embd, c.n_ff}, SplitKind::kRow, 1);
  }
  add(tn::kOutputNorm, f32, {c.n_embd}, {c.n_embd}, SplitKind::kReplicated, -1);
  if (!c.tie_word_embeddings)
    add(tn::kOutput, et, {p.n_vocab_local, c.n_embd}, {c.n_vocab, c.n_embd}, SplitKind::kVocab, 0);
  return out;
}

}  // namespace shardlm
