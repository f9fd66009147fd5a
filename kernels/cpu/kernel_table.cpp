// kernel_table(): the compiled-in tables by ISA level.
#include "kernels/cpu/kernel_table.h"

#include <string>

#include "runtime/core/status.h"

namespace shardlm::cpu {

extern const KernelTable kScalarTable;
#if defined(SHARDLM_CPU_X86_TABLES)
extern const KernelTable kAvx2Table;
extern const KernelTable kAvx512Table;
#endif

const KernelTable& kernel_table(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return kScalarTable;
#if defined(SHARDLM_CPU_X86_TABLES)
    case Isa::kAvx2:
      return kAvx2Table;
    case Isa::kAvx512:
    case Isa::kAmx:
      return kAvx512Table;
#else
    default:
      break;
#endif
  }
  fail(StatusCode::kInvalidArg, std::string("cpu kernels: ISA level '") + isa_name(isa) +
                                    "' is not compiled into this build");
}

}  // namespace shardlm::cpu
