// family_spec: per-family switches and their consistency checks.
#include "runtime/model/family.h"

#include "runtime/core/status.h"

namespace shardlm {

FamilySpec family_spec(const ModelConfig& c, const std::string& where) {
  FamilySpec s{family_name(c.family), c.attention_bias, c.o_proj_bias, c.qk_norm, c.sliding_window};
  auto unsupported = [&](const std::string& what) {
    fail(StatusCode::kUnsupported,
         where + ": " + s.name + " model with " + what + " is not supported");
  };
  switch (c.family) {
    case Family::kLlama:
      if (c.qk_norm) unsupported("q/k norm");
      if (c.sliding_window > 0) unsupported("a sliding window");
      break;
    case Family::kMistral:
      if (c.qk_norm) unsupported("q/k norm");
      break;
    case Family::kQwen2:
      if (c.qk_norm) unsupported("q/k norm");
      if (c.o_proj_bias) unsupported("an o_proj bias");
      break;
    case Family::kQwen3:
      if (!c.qk_norm) unsupported("no q/k norm");
      break;
  }
  if (c.sliding_window < 0) unsupported("a negative sliding window");
  if (c.rope_scaling.type != RopeScalingType::kNone && c.rope_scaling.factor <= 0) {
    unsupported("a non-positive rope scaling factor");
  }
  return s;
}

}  // namespace shardlm
