// The main() of the Boost.Program_options programs (shardlm-run, shardlm-bench): runs the
// program and turns every exception into one line on stderr and exit status 2, so bad input
// never aborts. Header only; not a parser and not used by the C ABI.
#pragma once

#include <boost/program_options/errors.hpp>

#include <cstdio>
#include <exception>

#include "runtime/core/status.h"

namespace shardlm::apps {

// `run(argc, argv)` returns the exit status; `prog` prefixes the error line.
template <class Run>
int cli_main(const char* prog, Run run, int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error (%s): %s\n", prog, status_name(e.code()), e.what());
  } catch (const boost::program_options::error& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", prog, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", prog, e.what());
  }
  return 2;
}

}  // namespace shardlm::apps
