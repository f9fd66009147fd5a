// The parameter block of each compute shader, as C++ structs with the exact std430 layout of the
// GLSL `Params` blocks in kernels/vulkan/shaders/*.comp (64-bit addresses first, then 32-bit
// fields, so the C layout and std430 agree). The backend writes one block per op into its
// parameter arena and passes the block's device address as the only push constant.
// Addresses are VkDeviceAddress values of the tensors' first elements.
#pragma once

#include <cstdint>

namespace shardlm::vulkan_kernels {

struct EmbedParams {  // embed.comp
  uint64_t ids, table, out;
  uint32_t n_tokens, n_embd;
  int32_t vocab_start, n_vocab_local;
};

struct RmsNormParams {  // rms_norm.comp
  uint64_t x, w, out;
  uint32_t n_rows, n;
  float eps;
  uint32_t pad_;
};

struct MatmulParams {  // gemv.comp and gemm_tiled.comp
  uint64_t x, w, bias, y;
  uint32_t n_tokens, n_in, n_out, has_bias, vec4_ok;
  uint32_t rows_per_group;  // gemv subgroup variants: rows per workgroup (RS per subgroup)
};

struct RopeParams {  // rope.comp
  uint64_t x, pos, inv_freq;
  uint32_t n_tokens, n_head, half_dim;
  uint32_t pad_;
};

struct AttentionParams {  // attention.comp and attention_combine.comp
  uint64_t q, k, v, pos, out;
  uint64_t partial;  // split-K partials [n_tokens, n_head, n_split, head_dim + 2], or 0
  uint32_t n_tokens, n_head, n_head_kv, head_dim;
  int32_t window;
  float scale;
  uint32_t n_split;  // 1: attention.comp writes out directly
  uint32_t pad_;
};

// paged_attention.comp: AttentionParams first (attention_combine.comp reads that prefix of the
// same block), k/v are the layer's pools, then where the step's tokens sit.
struct PagedAttentionParams {
  AttentionParams base;
  uint64_t seq;          // [n_tokens] int32: the sequence of each query token
  uint64_t block_table;  // [n_seqs, max_blocks] int32
  uint32_t block_size, max_blocks;
  uint32_t vec4_k;  // 1: K rows read 4 elements at a time (head_dim % 4 == 0, pool aligned)
  uint32_t pad_;
};

struct StoreKvParams {      // store_kv.comp
  uint64_t k, v;            // [n_tokens, row] f32
  uint64_t slots;           // [n_tokens] int32, < 0: skip the token
  uint64_t k_pool, v_pool;  // [n_slots, row] in the KV dtype
  uint32_t n_tokens, row;   // row = n_head_kv * head_dim
};

struct SwigluParams {  // swiglu.comp
  uint64_t gate_up, out;
  uint32_t n_tokens, n_ff;
};

struct AddParams {  // add.comp
  uint64_t y, x;
  uint32_t n;
  uint32_t pad_;
};

struct CopyColumnsParams {  // copy_columns.comp
  uint64_t src, dst;
  uint32_t n_rows, n_src_cols, col_begin, n_cols;
};

struct ArgmaxParams {  // argmax.comp
  uint64_t x, out;
  uint32_t n;
  uint32_t pad_;
};

// Work-group shapes the host must dispatch with (mirrors the #defines in the shaders).
inline constexpr uint32_t kElementwiseGroup = 256;    // embed, rope, swiglu, add, copy_columns
inline constexpr uint32_t kGemvRows = 2;              // gemv.comp R (shared-memory variant)
inline constexpr uint32_t kGemvRowsPerSubgroup = 8;   // gemv.comp RS, NT = 1 (subgroup variant)
inline constexpr uint32_t kGemv8RowsPerSubgroup = 4;  // gemv.comp RS, NT = 8 (subgroup variant)
inline constexpr uint32_t kGemvGroup = 128;           // gemv.comp WG
inline constexpr uint32_t kGemvTokens = 8;    // gemv8 variants: NT; the gemv variants have NT = 1
inline constexpr uint32_t kGemvQuantRows = 2;    // gemv_quant.comp R
inline constexpr uint32_t kGemvQuantTokens = 8;  // gemv_quant.comp NT (tokens per z group)
inline constexpr uint32_t kGemmTileOut = 64;  // gemm_tiled.comp BM
inline constexpr uint32_t kGemmTileTokens = 64;        // gemm_tiled.comp BN
inline constexpr uint32_t kAttentionGroup = 128;       // attention.comp WG
inline constexpr uint32_t kAttentionMaxHeadDim = 512;  // WG * ND
inline constexpr uint32_t kPagedAttentionGroup = 128;  // paged_attention.comp WG (same ND)

}  // namespace shardlm::vulkan_kernels
