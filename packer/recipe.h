// Sharding rules: for each tensor a rank file holds (formats/pack_layout.h), which pieces of
// which Hugging Face checkpoint tensors it is made of. This is where Q/K/V and gate/up get fused,
// heads split by column, o_proj/down split by row, the vocabulary split, and kv heads
// replicated when tp > n_head_kv. Pure bookkeeping: no bytes are read here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/model_config.h"
#include "formats/pack_layout.h"
#include "formats/safetensors.h"
#include "packer/gptq_source.h"

namespace shardlm {

// A block of a source tensor viewed as 2-D [rows, cols] (1-D tensors: [n, 1]).
struct SourcePiece {
  std::string tensor;  // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  int64_t row_begin = 0, row_end = 0;
  int64_t col_begin = 0, col_end = 0;
};

// An output tensor is its pieces concatenated along rows, in order.
struct TensorRecipe {
  PackTensorSpec spec;
  std::vector<SourcePiece> pieces;
};

// The recipes of one rank, in pack order.
// Matrices get weight_dtype, the token embedding and lm_head embedding_dtype. Throws
// Error(kInvalidArg) naming the tensor and rank when a quantized matrix's local rows are not whole
// quantization blocks (a TP size that splits a block).
std::vector<TensorRecipe> make_rank_recipes(const ModelConfig& c, const ParallelLayout& p, DType weight_dtype,
                                            DType embedding_dtype);

// Checks every source tensor the recipes use exists in `ckpt` with the shape the config implies
// and a float dtype (F32/F16/BF16), or, with `gptq` (a GPTQ checkpoint), as a GPTQ linear that
// check_gptq_source accepts. Throws Error(kFormat) naming the tensor, file, expected and actual
// shape or dtype (Error(kUnsupported) for GPTQ settings shardlm cannot hold).
void check_sources(const ModelConfig& c, const Checkpoint& ckpt,
                   const std::vector<TensorRecipe>& recipes, const GptqScheme* gptq = nullptr);

// The expected Hugging Face shape of a source tensor, from the config.
std::vector<int64_t> expected_source_shape(const ModelConfig& c, const std::string& hf_name);

}  // namespace shardlm
