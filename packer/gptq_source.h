// GPTQ checkpoints as a packer source: a Hugging Face checkpoint quantized by GPTQ (AutoGPTQ,
// GPTQModel, Optimum; config.json's quantization_config.quant_method "gptq") holds each linear
// layer as `<name>.qweight` (int32, [n_in / (32 / bits), n_out], values packed along the input),
// `<name>.scales` (f16, [n_groups, n_out]), `<name>.qzeros` (int32, [n_groups, n_out / (32 / bits)])
// and `<name>.g_idx` (int32, [n_in], optional). The symmetric schemes (zero point 2^(bits - 1))
// with groups of consecutive inputs map onto shardlm's int4 / int8 rows exactly: each group's scale
// becomes the scale of its 32-input blocks and the stored values stay as they are (GPTQ's q is
// shardlm's q + 8, or q + 128). Anything else (asymmetric zero points, act-order groups, 2/3 bits,
// other methods such as AWQ) is refused with an error naming the field or tensor.
// Not the packing pipeline (packer.cpp) and not the quantizer (runtime/core/quant.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "runtime/core/dtype.h"

namespace shardlm {

struct GptqScheme {
  int bits = 4;              // 4 or 8
  int64_t group_size = 128;  // consecutive inputs per scale; 0: one group per row (config's -1)
  // checkpoint_format "gptq" (the default, AutoGPTQ's v1) stores each zero point minus one;
  // "gptq_v2" stores the zero point.
  bool zeros_stored_minus_one = true;
  std::string summary() const;  // "gptq 4-bit, groups of 128"
  // The type its matrices pack as by default: int8 for 8 bits; for 4 bits int4g128 when every
  // group is whole multiples of 128 inputs (the scales carry over one to one), else int4.
  DType dtype() const {
    if (bits == 8) return DType::kInt8;
    return group_size > 0 && group_size % quant_scale_inputs(DType::kInt4G128) == 0
               ? DType::kInt4G128
               : DType::kInt4;
  }
  // Whether its matrices can pack as t exactly: dtype(), or int4 for any 4-bit scheme (each
  // group's scale repeated for its 32-input blocks).
  bool packs_as(DType t) const { return t == dtype() || (bits == 4 && t == DType::kInt4); }
};

// The GPTQ scheme config.json's quantization_config describes; nullopt when it has none. Throws
// Error(kUnsupported) naming the field for other methods and for settings shardlm cannot hold
// exactly (bits other than 4 and 8, sym false, groups that are not whole 32-input blocks, a
// quantized lm_head), and Error(kFormat) for wrong types.
std::optional<GptqScheme> read_gptq_scheme(const std::string& model_dir);
// The same from config.json's text (`where` names it in errors); malformed JSON gives nullopt
// (load_hf_config reports it).
std::optional<GptqScheme> parse_gptq_scheme(const std::string& config_text,
                                            const std::string& where);

// Whether the linear weight `weight_name` ("model.layers.0.mlp.up_proj.weight") is held in GPTQ
// form (its `.qweight` exists).
bool is_gptq_source(const Checkpoint& ckpt, const std::string& weight_name);

// The checkpoint tensors the source weight `weight_name` is read from: the tensor itself, or its
// GPTQ tensors (those present); empty when neither exists.
std::vector<const SafeTensor*> source_tensors(const Checkpoint& ckpt, const std::string& weight_name);

// Checks one GPTQ linear of logical shape [n_out, n_in]: its tensors exist with the shapes and
// dtypes above, every zero point is 2^(bits - 1) (symmetric) and g_idx, when present, is the plain
// mapping input -> input / group_size (no act-order). Throws Error(kFormat) for shapes and dtypes
// and Error(kUnsupported) for zero points and act-order, naming the file and tensor.
void check_gptq_source(const GptqScheme& s, const Checkpoint& ckpt, const std::string& weight_name,
                       int64_t n_out, int64_t n_in);

// Writes output rows [r0, r1) of the linear, restricted to inputs [c0, c1) (c0 and c1 multiples
// of quant_scale_inputs(dt)), as shardlm rows of dt (s.packs_as(dt)).
//   out [(r1 - r0) * row_bytes(dt, c1 - c0)]
void decode_gptq_rows(const GptqScheme& s, DType dt, const Checkpoint& ckpt,
                      const std::string& weight_name, int64_t r0, int64_t r1, int64_t c0,
                      int64_t c1, uint8_t* out);

}  // namespace shardlm
