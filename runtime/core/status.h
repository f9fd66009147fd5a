// Status codes and the exception that carries them inside the C++ code.
// Everything below the C ABI reports failure by throwing shardlm::Error; the extern "C" shims in
// runtime/api catch it and turn it into a shardlm_status plus a thread-local message.
// This file is not the C ABI: the public codes live in runtime/include/shardlm.h and mirror these.
#pragma once

#include <stdexcept>
#include <string>

namespace shardlm {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArg = 1,   // a caller passed something wrong (bad option, bad size, null handle)
  kIo = 2,           // a file could not be opened, read, written or renamed
  kFormat = 3,       // a file is malformed (safetensors, config.json, pack)
  kOom = 4,          // memory (host or device) ran out, or a plan does not fit
  kBackend = 5,      // a compute backend failed
  kComm = 6,         // a communicator failed
  kKvFull = 7,       // the KV cache has no room left
  kCancelled = 8,    // the caller asked to stop
  kUnsupported = 9,  // valid input that shardlm does not handle (architecture, dtype, ...)
  kInternal = 10,    // a bug in shardlm
};

// Short stable name of a code ("format", "io", ...).
const char* status_name(StatusCode code);

class Error : public std::runtime_error {
 public:
  Error(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  StatusCode code() const { return code_; }

 private:
  StatusCode code_;
};

[[noreturn]] inline void fail(StatusCode code, const std::string& message) {
  throw Error(code, message);
}

}  // namespace shardlm
