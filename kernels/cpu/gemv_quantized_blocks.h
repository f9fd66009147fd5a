// The blocking both AVX-512 quantized GEMVs share (gemv_quantized_avx512.cpp, _vnni.cpp): output
// rows in groups of R streamed together, tokens in groups of at most T, and the results (plus
// bias) stored. The per-ISA micro-kernel fills out[r][t] for one group. Header-only and free of
// intrinsics, so each kernel file compiles it with its own flags. Internal to kernels/cpu.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace shardlm::cpu {

// pass(nt, t0, rows, out): out[r][t] = dot of row r with token t0 + t, r < R, t < nt (<= T).
// The R rows of a pass are R sequential streams (rows o, o + q, ..., o + (R - 1) q for
// q = (o_end - o_begin) / R), so every thread keeps R separate memory streams in flight as the
// bf16 GEMV does; the rows left over (fewer than R) go in one last pass, whose missing rows repeat
// its last row (their results are dropped), so a pass always has R.
//   w [n_out rows of rb bytes], bias [n_out] or null, y [n_tokens, ldy]
template <int R, int T, class Pass>
void gemv_row_blocks(const uint8_t* w, size_t rb, int64_t n_tokens, int64_t o_begin, int64_t o_end,
                     const float* bias, float* y, int64_t ldy, const Pass& pass) {
  const int64_t q = (o_end - o_begin) / R;
  auto run = [&](const int64_t(&row_ids)[R], int n_valid) {
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = w + static_cast<size_t>(row_ids[r]) * rb;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += T) {
      const int nt = static_cast<int>(std::min<int64_t>(T, n_tokens - t0));
      float out[R][T];
      pass(nt, t0, rows, out);
      for (int r = 0; r < n_valid; ++r)
        for (int t = 0; t < nt; ++t)
          y[(t0 + t) * ldy + row_ids[r]] = out[r][t] + (bias ? bias[row_ids[r]] : 0.0f);
    }
  };
  int64_t ids[R];
  for (int64_t i = 0; i < q; ++i) {
    for (int r = 0; r < R; ++r) ids[r] = o_begin + i + r * q;
    run(ids, R);
  }
  const int64_t left = o_end - (o_begin + R * q);
  if (left > 0) {
    for (int r = 0; r < R; ++r) ids[r] = o_begin + R * q + std::min<int64_t>(r, left - 1);
    run(ids, static_cast<int>(left));
  }
}

}  // namespace shardlm::cpu
