// Names of status codes.
#include "status.h"

namespace shardlm {

const char* status_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArg: return "invalid argument";
    case StatusCode::kIo: return "io";
    case StatusCode::kFormat: return "format";
    case StatusCode::kOom: return "out of memory";
    case StatusCode::kBackend: return "backend";
    case StatusCode::kComm: return "comm";
    case StatusCode::kKvFull: return "kv cache full";
    case StatusCode::kCancelled: return "cancelled";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace shardlm
