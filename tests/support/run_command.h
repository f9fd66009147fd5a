// Test support: runs a shell command line, capturing stdout and stderr together, and returns its
// exit code (-1 when it did not exit normally). For the tests that drive the programs end to end.
// Header-only; tests only.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace shardlm::testing {

struct CliResult {
  int code;
  std::string out;
};

inline CliResult run_command(const std::string& command_line) {
  const std::string cmd = command_line + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed: " + command_line};
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace shardlm::testing
