// rope_inv_freq: default, linear and llama3 scaling.
#include "runtime/model/rope_freqs.h"

#include <cmath>

#include "runtime/core/status.h"

namespace shardlm {

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  if (dim <= 0 || dim % 2 != 0) {
    fail(StatusCode::kUnsupported, "rope needs an even head_dim, got " + std::to_string(dim));
  }
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in f32.
    const float expo = static_cast<float>(2 * i) / static_cast<float>(dim);
    const float p = std::pow(static_cast<float>(c.rope_theta), expo);
    inv[static_cast<size_t>(i)] = 1.0f / p;
  }
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScalingType::kLinear) {
    for (float& f : inv) f = f / s.factor;
  } else if (s.type == RopeScalingType::kLlama3) {
    const double old_ctx = static_cast<double>(s.original_max_position_embeddings);
    const double low_wavelen = old_ctx / s.low_freq_factor;
    const double high_wavelen = old_ctx / s.high_freq_factor;
    for (float& f : inv) {
      const double wavelen = 2.0 * M_PI / f;
      double out = wavelen > low_wavelen ? f / s.factor : f;
      const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      if (medium) {
        const double smooth =
            (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        out = (1.0 - smooth) * out / s.factor + smooth * out;
      }
      f = static_cast<float>(out);
    }
  }
  return inv;
}

}  // namespace shardlm
