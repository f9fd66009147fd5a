// Binds one rank's pack tensors to the tensors the forward uses, checking every name, dtype
// and shape against the config and parallel layout (formats/tensor_names.h is the contract).
// The backend imports each weight: on CPU that is the mapped pack memory itself (zero copy).
// Not the forward and not pack validation in general (formats/pack_reader does that).
#pragma once

#include <memory>
#include <vector>

#include "formats/pack_reader.h"
#include "runtime/backend/backend.h"
#include "runtime/model/family.h"

namespace shardlm {

struct LayerWeights {
  Tensor attn_norm;  // [n_embd] f32
  Tensor wqkv;       // [(n_head_local + 2 * n_head_kv_local) * head_dim, n_embd]
  Tensor bqkv;       // [(n_head_local + 2 * n_head_kv_local) * head_dim] f32, or null data
  Tensor q_norm;     // [head_dim] f32, or null data
  Tensor k_norm;     // [head_dim] f32, or null data
  Tensor wo;         // [n_embd, n_head_local * head_dim]
  Tensor bo;         // [n_embd] f32 on rank 0 when the family has an o_proj bias, else null data
  Tensor ffn_norm;   // [n_embd] f32
  Tensor w_gate_up;  // [2 * n_ff_local, n_embd]
  Tensor w_down;     // [n_embd, n_ff_local]
};

struct ModelWeights {
  Tensor tok_embd;     // [n_vocab_local, n_embd]
  Tensor output;       // [n_vocab_local, n_embd] (tok_embd itself when tied)
  Tensor output_norm;  // [n_embd] f32
  std::vector<LayerWeights> layers;
  std::vector<std::unique_ptr<DeviceBuffer>> storage;  // copies, when the backend needs them
  uint64_t bytes_in_place = 0;  // weight bytes used directly from the mapping
  uint64_t bytes_copied = 0;
};

// Throws Error(kFormat) naming the pack file and tensor when one is missing, has the wrong
// dtype (matrices: the pack's weight dtype; 1-D: f32) or the wrong shape.
ModelWeights bind_weights(const PackReader& pack, const FamilySpec& spec, Backend& backend);

}  // namespace shardlm
