// Counting decode bytes and prefill FLOPs from the rank packs; see traffic.h.
#include "apps/shardlm-bench/traffic.h"

#include <algorithm>

#include "formats/tensor_names.h"

namespace shardlm::bench {

uint64_t Traffic::step_bytes(int64_t n_kv) const {
  return weight_bytes + embed_row_bytes + kv_bytes_per_pos * static_cast<uint64_t>(n_kv);
}

double Traffic::prefill_flops(int64_t n, const ModelConfig& c) const {
  double attended = 0;  // sum over query positions of the keys each one sees
  for (int64_t t = 0; t < n; ++t) {
    attended +=
        static_cast<double>(c.sliding_window > 0 ? std::min(t + 1, c.sliding_window) : t + 1);
  }
  const double attn = static_cast<double>(c.n_layer * c.n_head * c.head_dim) * 4.0 * attended;
  return 2.0 * static_cast<double>(matrix_params) * static_cast<double>(n) + attn +
         2.0 * static_cast<double>(lm_head_params);
}

Traffic count_traffic(const std::vector<const PackReader*>& ranks, DType kv_dtype) {
  namespace tn = tensor_names;
  Traffic t;
  for (const PackReader* p : ranks) {
    const bool tied = p->find(tn::kOutput) == nullptr;
    const ParallelLayout& lay = p->parallel();
    const ModelConfig& c = p->config();
    for (const PackTensor& x : p->tensors()) {
      const bool is_embd = x.name == tn::kTokEmbd;
      const bool is_lm_head = x.name == tn::kOutput || (tied && is_embd);
      if (is_embd && !tied) continue;
      t.weight_bytes += x.nbytes;
      t.weight_regions.push_back({x.data, static_cast<size_t>(x.nbytes)});
      if (is_lm_head) {
        t.lm_head_bytes += x.nbytes;
        t.lm_head_params += static_cast<uint64_t>(x.numel());
      } else if (x.shape.size() == 2) {
        t.matrix_params += static_cast<uint64_t>(x.numel());
      }
    }
    t.kv_bytes_per_pos += static_cast<uint64_t>(2 * c.n_layer * lay.n_head_kv_local * c.head_dim) *
                          dtype_size(kv_dtype);
  }
  if (!ranks.empty()) {
    t.embed_row_bytes = row_bytes(ranks[0]->embedding_dtype(), ranks[0]->config().n_embd);
  }
  return t;
}

}  // namespace shardlm::bench
