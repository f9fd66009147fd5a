// Fuzz target: a Hugging Face config.json, parsed and validated as shardlm-pack does (its
// quantization_config too), then taken through what the packer computes from it at TP 1, 2, 4
// and 8: the parallel layout, the pack's tensor list and shapes, and the memory plan. A config that
// parses must give finite, non-negative sizes (UBSan reports any signed overflow on the way).
#include <cstdint>
#include <string>

#include "formats/hf_config.h"
#include "formats/memory_plan.h"
#include "formats/pack_layout.h"
#include "fuzz_util.h"
#include "packer/gptq_source.h"
#include "packer/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardlm;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clear_error([&] {
    if (const auto gptq = parse_gptq_scheme(text, "config.json")) {
      fuzz::check(gptq->bits == 4 || gptq->bits == 8, "GPTQ bits other than 4 and 8 accepted");
      fuzz::check(gptq->group_size >= 0 && gptq->group_size % kQuantBlock == 0,
                  "a GPTQ group that is not whole 32-input blocks accepted");
    }
  });
  ModelConfig config;
  if (!fuzz::expect_clear_error([&] {
        config = parse_hf_config(text, "config.json");
        validate_model_config(config, "config.json");
      }))
    return 0;
  for (const int tp : {1, 2, 4, 8}) {
    fuzz::expect_clear_error([&] {
      const ParallelLayout layout = make_parallel_layout(config, tp, tp - 1);
      unsigned __int128 weight_bytes = 0;
      for (const DType dt : {DType::kBF16, DType::kInt8}) {
        for (const TensorRecipe& recipe : make_rank_recipes(config, layout, dt, DType::kBF16)) {
          const PackTensorSpec& spec = recipe.spec;
          unsigned __int128 rows = 1;
          for (const int64_t d : spec.shape)
            fuzz::check(d > 0, "dimension <= 0 in '" + spec.name + "'");
          for (size_t i = 0; i + 1 < spec.shape.size(); ++i)
            rows *= static_cast<uint64_t>(spec.shape[i]);
          if (dt == DType::kBF16) weight_bytes += rows * row_bytes(spec.dtype, spec.shape.back());
          for (const SourcePiece& piece : recipe.pieces)
            fuzz::check(piece.row_begin >= 0 && piece.row_begin <= piece.row_end &&
                            piece.col_begin >= 0 && piece.col_begin <= piece.col_end,
                        "an inverted source piece of '" + piece.tensor + "'");
        }
      }
      if (weight_bytes >> 64)
        return;  // more bytes than any machine has; the plan's uint64 cannot say
      PlanOptions options;
      options.device_total_bytes = 64ull << 30;
      const MemoryPlan plan =
          compute_memory_plan(config, layout, static_cast<uint64_t>(weight_bytes), options);
      fuzz::check(plan.kv_tokens >= 0, "negative kv_tokens");
      (void)plan.shortfall_message();
    });
  }
  return 0;
}
