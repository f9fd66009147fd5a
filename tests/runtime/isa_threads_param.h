// The (ISA level, thread count) parameter of the CPU kernel tests and its gtest name
// ("avx512_3_threads"), shared by kernels_test.cpp and paged_kernels_test.cpp. Header only.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "kernels/cpu/isa.h"

namespace shardlm::test {

using IsaThreads = std::tuple<cpu::Isa, int>;

inline std::string isa_threads_name(const ::testing::TestParamInfo<IsaThreads>& info) {
  return std::string(cpu::isa_name(std::get<0>(info.param))) + "_" +
         std::to_string(std::get<1>(info.param)) + "_threads";
}

}  // namespace shardlm::test
