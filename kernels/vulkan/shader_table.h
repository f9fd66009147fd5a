// The embedded SPIR-V of every shardlm compute shader variant (kernels/vulkan/shaders/*.comp,
// compiled by glslc at build time) and how variants are named. Only data and names: no Vulkan
// calls, no pipelines (runtime/backend/vulkan builds those).
//
// Variant names: <shader>[_<wdtype>][_s16][_sg]
//   <shader>                    embed, rms_norm, gemv (1 token), gemv8 (2..8 tokens),
//                               gemm_tiled, rope, attention, swiglu, add, copy_columns, argmax,
//                               store_kv, paged_attention (paged KV cache)
//   <wdtype> f32 | f16 | bf16   weight dtype (gemv, gemv8, gemm_tiled, embed), or the KV pools'
//                               dtype (store_kv, paged_attention)
//   _s16                        16-bit weights read through 16-bit storage (needs
//                               storageBuffer16BitAccess); without it, through 32-bit words
//   _sg                         reductions with subgroup arithmetic (rms_norm, attention,
//                               paged_attention, gemv);
//                               without it, a shared-memory tree
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "runtime/core/dtype.h"

namespace shardlm::vulkan_kernels {

struct ShaderBlob {
  const char* name;
  const uint32_t* words;
  size_t n_words;
};

std::span<const ShaderBlob> all_shaders();
// Null when no variant has that name.
const ShaderBlob* find_shader(std::string_view name);

// "gemv_bf16_s16_sg" from ("gemv", bf16, true, true). `weights` false omits the dtype part;
// s16 is dropped for f32 and quantized weights (no 16-bit variant of them).
std::string variant_name(std::string_view shader, bool weights, DType wdtype, bool s16, bool sg);

}  // namespace shardlm::vulkan_kernels
