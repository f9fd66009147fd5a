// The portable kernel table (any CPU): generic_loops.h compiled for the baseline ISA.
#include "kernels/cpu/generic_loops.h"

namespace shardlm::cpu {

namespace {
constexpr int kMr = 4, kNr = 16;
}

extern const KernelTable kScalarTable = {
    .isa = Isa::kScalar,
    .gemv = generic::gemv,
    .gemm_mr = kMr,
    .gemm_nr = kNr,
    .gemm_pack_w = generic::gemm_pack_w<kNr>,
    .gemm_tile = generic::gemm_tile<kMr, kNr>,
    .attn_scores = generic::attn_scores,
    .attn_pv = generic::attn_pv,
    .attn_scores_row = generic::attn_scores_row,
    .attn_pv_row = generic::attn_pv_row,
    .dot = generic::dot,
    .axpy = generic::axpy,
    .scale = generic::scale,
    .add = generic::add,
    .max = generic::max,
    .exp_sub_sum = generic::exp_sub_sum,
    .widen = generic::widen,
    .f8e4m3_to_bf16 = generic::f8e4m3_to_bf16,
    .f32_to_f8e4m3 = generic::f32_to_f8e4m3,
    .rms_norm_row = generic::rms_norm_row,
    .swiglu_row = generic::swiglu_row,
};

}  // namespace shardlm::cpu
