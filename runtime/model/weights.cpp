// bind_weights: expected shapes from config + layout, checked and imported tensor by tensor.
#include "runtime/model/weights.h"

#include <string>

#include "formats/tensor_names.h"
#include "runtime/core/status.h"

namespace shardlm {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Binder {
 public:
  Binder(const PackReader& pack, Backend& backend, ModelWeights& w)
      : pack_(pack), backend_(backend), w_(w) {}

  Tensor bind(const std::string& name, std::vector<int64_t> shape, bool required = true) {
    const PackTensor* t = pack_.find(name);
    if (t == nullptr) {
      if (!required) return Tensor{};
      fail(StatusCode::kFormat, pack_.path() + ": tensor '" + name + "' is missing");
    }
    const bool embedding = name == tensor_names::kTokEmbd || name == tensor_names::kOutput;
    const DType want = shape.size() == 1 ? DType::kF32
                       : embedding       ? pack_.embedding_dtype()
                                         : pack_.weight_dtype();
    if (t->dtype != want) {
      fail(StatusCode::kFormat, pack_.path() + ": tensor '" + name + "' has dtype " +
                                    dtype_name(t->dtype) + ", expected " + dtype_name(want));
    }
    if (!backend_.supports_weight_dtype(t->dtype)) {
      fail(StatusCode::kUnsupported,
           pack_.path() + ": tensor '" + name + "' is " + dtype_name(t->dtype) + ", which the " +
               backend_.name() + " backend has no kernels for yet; run it on the cpu backend, or " +
               "pack without --weights for this backend");
    }
    if (t->shape != shape) {
      fail(StatusCode::kFormat, pack_.path() + ": tensor '" + name + "' has shape " +
                                    shape_str(t->shape) + ", expected " + shape_str(shape));
    }
    Tensor host;
    host.data = const_cast<uint8_t*>(t->data);
    host.dtype = t->dtype;
    host.ndim = static_cast<int>(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) host.shape[i] = shape[i];
    std::unique_ptr<DeviceBuffer> storage;
    Tensor dev = backend_.import_weight(host, storage);
    if (storage) {
      w_.bytes_copied += t->nbytes;
      w_.storage.push_back(std::move(storage));
    } else {
      w_.bytes_in_place += t->nbytes;
    }
    return dev;
  }

 private:
  const PackReader& pack_;
  Backend& backend_;
  ModelWeights& w_;
};

}  // namespace

ModelWeights bind_weights(const PackReader& pack, const FamilySpec& spec, Backend& backend) {
  namespace tn = tensor_names;
  const ModelConfig& c = pack.config();
  const ParallelLayout& p = pack.parallel();
  ModelWeights w;
  Binder b(pack, backend, w);
  const int64_t qkv_rows = (p.n_head_local + 2 * p.n_head_kv_local) * c.head_dim;

  w.tok_embd = b.bind(tn::kTokEmbd, {p.n_vocab_local, c.n_embd});
  w.output = c.tie_word_embeddings ? w.tok_embd : b.bind(tn::kOutput, {p.n_vocab_local, c.n_embd});
  w.output_norm = b.bind(tn::kOutputNorm, {c.n_embd});
  w.layers.resize(static_cast<size_t>(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    L.attn_norm = b.bind(tn::blk(l, tn::kAttnNorm), {c.n_embd});
    L.wqkv = b.bind(tn::blk(l, tn::kWqkv), {qkv_rows, c.n_embd});
    if (spec.qkv_bias) L.bqkv = b.bind(tn::blk(l, tn::kBqkv), {qkv_rows});
    if (spec.qk_norm) {
      L.q_norm = b.bind(tn::blk(l, tn::kQNorm), {c.head_dim});
      L.k_norm = b.bind(tn::blk(l, tn::kKNorm), {c.head_dim});
    }
    L.wo = b.bind(tn::blk(l, tn::kWo), {c.n_embd, p.n_head_local * c.head_dim});
    if (spec.o_bias && p.tp_rank == 0) L.bo = b.bind(tn::blk(l, tn::kBo), {c.n_embd});
    L.ffn_norm = b.bind(tn::blk(l, tn::kFfnNorm), {c.n_embd});
    L.w_gate_up = b.bind(tn::blk(l, tn::kWGateUp), {2 * p.n_ff_local, c.n_embd});
    L.w_down = b.bind(tn::blk(l, tn::kWDown), {c.n_embd, p.n_ff_local});
  }
  return w;
}

}  // namespace shardlm
