// extern "C": version queries, status names, the thread-local last error, backends; and the
// helpers of api_internal.h.
#include <algorithm>

#include "runtime/api/api_internal.h"
#include "runtime/backend/registry.h"

#ifndef SHARDLM_VERSION_STRING
#define SHARDLM_VERSION_STRING "0.0.0"
#endif

namespace shardlm::api {

std::string& last_error_storage() {
  thread_local std::string message;  // per-thread by the ABI's contract (DESIGN.md)
  return message;
}

shardlm_status set_error(shardlm_status status, const std::string& message) {
  try {
    last_error_storage() = message;
  } catch (...) {  // no memory for the message: keep the status
  }
  return status;
}

shardlm_status to_status(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return SHARDLM_OK;
    case StatusCode::kInvalidArg:
      return SHARDLM_ERR_INVALID_ARG;
    case StatusCode::kIo:
      return SHARDLM_ERR_IO;
    case StatusCode::kFormat:
      return SHARDLM_ERR_FORMAT;
    case StatusCode::kOom:
      return SHARDLM_ERR_OOM;
    case StatusCode::kBackend:
      return SHARDLM_ERR_BACKEND;
    case StatusCode::kComm:
      return SHARDLM_ERR_COMM;
    case StatusCode::kKvFull:
      return SHARDLM_ERR_KV_FULL;
    case StatusCode::kCancelled:
      return SHARDLM_ERR_CANCELLED;
    case StatusCode::kUnsupported:
      return SHARDLM_ERR_UNSUPPORTED;
    case StatusCode::kInternal:
      return SHARDLM_ERR_INTERNAL;
  }
  return SHARDLM_ERR_INTERNAL;
}

void require(const void* p, const char* what) {
  if (p == nullptr) fail(StatusCode::kInvalidArg, std::string(what) + " is NULL");
}

void check_struct_size(size_t given, size_t expected, const char* struct_name) {
  if (given != expected) {
    fail(StatusCode::kInvalidArg, std::string(struct_name) + ".struct_size is " +
                                      std::to_string(given) + "; this library (ABI " +
                                      std::to_string(SHARDLM_ABI_VERSION) + ") expects " +
                                      std::to_string(expected) +
                                      " (initialize it with the *_default_params() call, or "
                                      "sizeof for output structs)");
  }
}

void check_struct_size_range(size_t given, size_t oldest, size_t current,
                             const char* struct_name) {
  if (given < oldest || given > current) {
    fail(StatusCode::kInvalidArg, std::string(struct_name) + ".struct_size is " +
                                      std::to_string(given) + "; this library (ABI " +
                                      std::to_string(SHARDLM_ABI_VERSION) + ") accepts " +
                                      std::to_string(oldest) + " to " + std::to_string(current) +
                                      " (initialize it with the *_default_params() call, or "
                                      "sizeof for output structs)");
  }
}

shardlm_status copy_out(std::string_view text, char* buf, size_t buf_size, size_t* out_len,
                        const char* what) {
  require(out_len, "out_len");
  *out_len = text.size();
  if (buf == nullptr) {
    if (buf_size != 0)
      fail(StatusCode::kInvalidArg, std::string(what) + ": buf is NULL but buf_size > 0");
    return SHARDLM_OK;  // size query
  }
  if (buf_size < text.size() + 1) {
    return set_error(SHARDLM_ERR_BUFFER_TOO_SMALL,
                     std::string(what) + ": buffer of " + std::to_string(buf_size) +
                         " bytes is too small; " + std::to_string(text.size() + 1) +
                         " needed (text + NUL)");
  }
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return SHARDLM_OK;
}

shardlm_status copy_out(const int32_t* ids, size_t n, int32_t* buf, size_t capacity,
                        size_t* out_count, const char* what) {
  require(out_count, "out_count");
  *out_count = n;
  if (buf == nullptr) {
    if (capacity != 0)
      fail(StatusCode::kInvalidArg, std::string(what) + ": ids is NULL but capacity > 0");
    return SHARDLM_OK;
  }
  if (capacity < n) {
    return set_error(SHARDLM_ERR_BUFFER_TOO_SMALL, std::string(what) + ": room for " +
                                                       std::to_string(capacity) + " ids; " +
                                                       std::to_string(n) + " needed");
  }
  if (n) std::memcpy(buf, ids, n * sizeof(int32_t));
  return SHARDLM_OK;
}

}  // namespace shardlm::api

using namespace shardlm;
using namespace shardlm::api;

extern "C" {

SHARDLM_API uint32_t shardlm_abi_version(void) {
  return SHARDLM_ABI_VERSION;
}

SHARDLM_API const char* shardlm_version(void) {
  return SHARDLM_VERSION_STRING;
}

SHARDLM_API const char* shardlm_status_name(shardlm_status status) {
  switch (status) {
    case SHARDLM_OK:
      return "ok";
    case SHARDLM_ERR_INVALID_ARG:
      return "invalid_arg";
    case SHARDLM_ERR_IO:
      return "io";
    case SHARDLM_ERR_FORMAT:
      return "format";
    case SHARDLM_ERR_OOM:
      return "oom";
    case SHARDLM_ERR_BACKEND:
      return "backend";
    case SHARDLM_ERR_COMM:
      return "comm";
    case SHARDLM_ERR_KV_FULL:
      return "kv_full";
    case SHARDLM_ERR_CANCELLED:
      return "cancelled";
    case SHARDLM_ERR_UNSUPPORTED:
      return "unsupported";
    case SHARDLM_ERR_INTERNAL:
      return "internal";
    case SHARDLM_ERR_BUFFER_TOO_SMALL:
      return "buffer_too_small";
  }
  return "unknown";
}

SHARDLM_API const char* shardlm_last_error(void) {
  return last_error_storage().c_str();
}

SHARDLM_API shardlm_status shardlm_backends(char* buf, size_t buf_size, size_t* out_len) {
  return guard([&] {
    std::string names;
    for (const std::string& n : builtin_backends().names()) names += (names.empty() ? "" : ",") + n;
    return copy_out(names, buf, buf_size, out_len, "shardlm_backends");
  });
}

}  // extern "C"
