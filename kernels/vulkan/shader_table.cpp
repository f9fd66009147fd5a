// Variant lookup over the generated table (shader_table_data.cpp in the build dir).
#include "kernels/vulkan/shader_table.h"

namespace shardlm::vulkan_kernels {

const ShaderBlob* find_shader(std::string_view name) {
  for (const ShaderBlob& b : all_shaders()) {
    if (name == b.name) return &b;
  }
  return nullptr;
}

std::string variant_name(std::string_view shader, bool weights, DType wdtype, bool s16, bool sg) {
  std::string n(shader);
  if (weights) {
    n += "_";
    n += dtype_name(wdtype);
    if (s16 && (wdtype == DType::kF16 || wdtype == DType::kBF16)) n += "_s16";
  }
  if (sg) n += "_sg";
  return n;
}

}  // namespace shardlm::vulkan_kernels
