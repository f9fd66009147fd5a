// Hugging Face tensor names -> per-rank fused, sliced pack tensors (see recipe.h).
#include "packer/recipe.h"

#include <map>

#include "formats/tensor_names.h"
#include "runtime/core/status.h"

namespace shardlm {
namespace {

std::string layer(int64_t l, const char* rest) { return "model.layers." + std::to_string(l) + "." + rest; }

// Pieces for `n_rows` rows starting at row `r0` of a 2-D tensor with `cols` columns (all columns).
SourcePiece rows(const std::string& t, int64_t r0, int64_t n_rows, int64_t cols) {
  return {t, r0, r0 + n_rows, 0, cols};
}

std::string hf_suffix(const std::string& name) {
  // "model.layers.12.self_attn.q_proj.weight" -> "self_attn.q_proj.weight"
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) != 0) return name;
  const size_t dot = name.find('.', prefix.size());
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

}  // namespace

std::vector<int64_t> expected_source_shape(const ModelConfig& c, const std::string& name) {
  const int64_t q = c.n_head * c.head_dim, kv = c.n_head_kv * c.head_dim;
  static const std::map<std::string, int> kinds = {
      {"input_layernorm.weight", 0},   {"post_attention_layernorm.weight", 0},
      {"self_attn.q_proj.weight", 1},  {"self_attn.k_proj.weight", 2},
      {"self_attn.v_proj.weight", 2},  {"self_attn.q_proj.bias", 3},
      {"self_attn.k_proj.bias", 4},    {"self_attn.v_proj.bias", 4},
      {"self_attn.o_proj.weight", 5},  {"self_attn.o_proj.bias", 0},
      {"self_attn.q_norm.weight", 6},  {"self_attn.k_norm.weight", 6},
      {"mlp.gate_proj.weight", 7},     {"mlp.up_proj.weight", 7},
      {"mlp.down_proj.weight", 8},
  };
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return {c.n_vocab, c.n_embd};
  if (name == "model.norm.weight") return {c.n_embd};
  auto it = kinds.find(hf_suffix(name));
  if (it == kinds.end()) fail(StatusCode::kInternal, "no expected shape for " + name);
  switch (it->second) {
    case 0: return {c.n_embd};
    case 1: return {q, c.n_embd};
    case 2: return {kv, c.n_embd};
    case 3: return {q};
    case 4: return {kv};
    case 5: return {c.n_embd, q};
    case 6: return {c.head_dim};
    case 7: return {c.n_ff, c.n_embd};
    case 8: return {c.n_embd, c.n_ff};
  }
  return {};
}

std::vector<TensorRecipe> make_rank_recipes(const ModelConfig& c, const ParallelLayout& p, DType wt, DType et) {
  namespace tn = tensor_names;
  std::map<std::string, std::vector<SourcePiece>> pieces;
  const int64_t E = c.n_embd, D = c.head_dim;

  pieces[tn::kTokEmbd] = {rows("model.embed_tokens.weight", p.vocab_start, p.n_vocab_local, E)};
  if (!c.tie_word_embeddings) pieces[tn::kOutput] = {rows("lm_head.weight", p.vocab_start, p.n_vocab_local, E)};
  pieces[tn::kOutputNorm] = {rows("model.norm.weight", 0, E, 1)};
  for (int64_t l = 0; l < c.n_layer; ++l) {
    pieces[tn::blk(l, tn::kAttnNorm)] = {rows(layer(l, "input_layernorm.weight"), 0, E, 1)};
    pieces[tn::blk(l, tn::kFfnNorm)] = {rows(layer(l, "post_attention_layernorm.weight"), 0, E, 1)};
    const int64_t q0 = p.head_start * D, nq = p.n_head_local * D;
    const int64_t k0 = p.kv_head_start * D, nk = p.n_head_kv_local * D;
    pieces[tn::blk(l, tn::kWqkv)] = {rows(layer(l, "self_attn.q_proj.weight"), q0, nq, E),
                                     rows(layer(l, "self_attn.k_proj.weight"), k0, nk, E),
                                     rows(layer(l, "self_attn.v_proj.weight"), k0, nk, E)};
    if (c.attention_bias)
      pieces[tn::blk(l, tn::kBqkv)] = {rows(layer(l, "self_attn.q_proj.bias"), q0, nq, 1),
                                       rows(layer(l, "self_attn.k_proj.bias"), k0, nk, 1),
                                       rows(layer(l, "self_attn.v_proj.bias"), k0, nk, 1)};
    if (c.qk_norm) {
      pieces[tn::blk(l, tn::kQNorm)] = {rows(layer(l, "self_attn.q_norm.weight"), 0, D, 1)};
      pieces[tn::blk(l, tn::kKNorm)] = {rows(layer(l, "self_attn.k_norm.weight"), 0, D, 1)};
    }
    // Row-parallel: all output rows, this rank's input columns.
    pieces[tn::blk(l, tn::kWo)] = {{layer(l, "self_attn.o_proj.weight"), 0, E, q0, q0 + nq}};
    if (c.o_proj_bias) pieces[tn::blk(l, tn::kBo)] = {rows(layer(l, "self_attn.o_proj.bias"), 0, E, 1)};
    const int64_t f0 = p.ff_start, nf = p.n_ff_local;
    pieces[tn::blk(l, tn::kWGateUp)] = {rows(layer(l, "mlp.gate_proj.weight"), f0, nf, E),
                                        rows(layer(l, "mlp.up_proj.weight"), f0, nf, E)};
    pieces[tn::blk(l, tn::kWDown)] = {{layer(l, "mlp.down_proj.weight"), 0, E, f0, f0 + nf}};
  }

  std::vector<TensorRecipe> out;
  for (PackTensorSpec& spec : pack_tensor_specs(c, p, wt, et)) {
    auto it = pieces.find(spec.name);
    if (it == pieces.end()) fail(StatusCode::kInternal, "no recipe for pack tensor " + spec.name);
    const int64_t gi = is_quantized(spec.dtype) ? quant_scale_inputs(spec.dtype) : 1;
    if (is_quantized(spec.dtype) && spec.shape.size() == 2 && spec.shape[1] % gi != 0) {
      const int64_t global_in = spec.global_shape[1];
      const std::string block = std::string(dtype_name(spec.dtype)) +
                                (gi == kQuantBlock ? " block of " : " scale group of ") +
                                std::to_string(gi);
      if (global_in % gi != 0)  // no TP size helps: the matrix's rows are not whole blocks
        fail(StatusCode::kInvalidArg, spec.name + ": its rows have " + std::to_string(global_in) +
                                          " input columns, not a multiple of the " + block +
                                          ": this model cannot be packed with quantized weights");
      fail(StatusCode::kInvalidArg,
           spec.name + ": rank " + std::to_string(p.tp_rank) + " of " + std::to_string(p.tp_size) +
               " holds " + std::to_string(spec.shape[1]) + " of its " + std::to_string(global_in) +
               " input columns, not a multiple of the " + block + " (the TP size splits " +
               (gi == kQuantBlock ? "a block" : "a scale group") +
               "): choose a TP size that divides " + std::to_string(global_in / gi) +
               (gi == kQuantBlock ? " blocks" : " groups") +
               " evenly, or pack without quantization" +
               (gi == kQuantBlock ? "" : " or with --weights int4 (blocks of 32)"));
    }
    out.push_back({std::move(spec), it->second});
  }
  return out;
}

void check_sources(const ModelConfig& c, const Checkpoint& ckpt,
                   const std::vector<TensorRecipe>& recipes, const GptqScheme* gptq) {
  auto shape_str = [](const std::vector<int64_t>& s) {
    std::string o = "[";
    for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
    return o + "]";
  };
  for (const TensorRecipe& r : recipes) {
    for (const SourcePiece& piece : r.pieces) {
      const SafeTensor* t = ckpt.find(piece.tensor);
      const auto want = expected_source_shape(c, piece.tensor);
      if (t == nullptr && is_gptq_source(ckpt, piece.tensor)) {
        if (gptq == nullptr)
          fail(StatusCode::kFormat, ckpt.dir() + ": tensor '" + piece.tensor +
                                        "' is held quantized (.qweight), but config.json has no "
                                        "quantization_config saying how");
        check_gptq_source(*gptq, ckpt, piece.tensor, want.at(0), want.at(1));
        continue;
      }
      if (t == nullptr)
        fail(StatusCode::kFormat, ckpt.dir() + ": tensor '" + piece.tensor +
                                      "' is missing (needed for " + r.spec.name +
                                      "; is the checkpoint complete and config.json right?)");
      if (t->shape != want)
        fail(StatusCode::kFormat, t->file->path() + ": tensor '" + piece.tensor + "' has shape " + shape_str(t->shape) +
                                      ", config.json implies " + shape_str(want));
      if (!t->dtype)
        fail(StatusCode::kFormat, t->file->path() + ": tensor '" + piece.tensor + "' has dtype " + t->dtype_name +
                                      "; shardlm-pack reads F32, F16 and BF16 weights");
    }
  }
}

}  // namespace shardlm
