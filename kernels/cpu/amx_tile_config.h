// The 64-byte block LDTILECFG reads (palette 1): each tile's rows and bytes per row. Shared by the
// AMX kernels (gemm_amx.cpp, gemv_amx.cpp), which fill it for their own tile layouts. Internal
// to kernels/cpu; no intrinsics here.
#pragma once

#include <cstdint>

namespace shardlm::cpu {

struct AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row of tile i
  uint8_t rows[16] = {};    // rows of tile i
};
static_assert(sizeof(AmxTileConfig) == 64, "LDTILECFG reads 64 bytes");

}  // namespace shardlm::cpu
