// The portable kernel table (any CPU): generic_loops.h compiled for the baseline ISA.
#include "kernels/cpu/generic_loops.h"

namespace shardlm::cpu {

namespace {
constexpr int kMr = 4, kNr = 16;
}

extern const KernelTable kScalarTable = {
    Isa::kScalar,
    generic::gemv,
    kMr,
    kNr,
    generic::gemm_pack_w<kNr>,
    generic::gemm_tile<kMr, kNr>,
    generic::dot,
    generic::axpy,
    generic::scale,
    generic::add,
    generic::exp_sub_sum,
    generic::widen,
    generic::rms_norm_row,
    generic::swiglu_row,
};

}  // namespace shardlm::cpu
