// The live-handle registry of the C ABI (api_handles.h): one hash map under a reader/writer lock.
// Lookups take the shared lock, so concurrent calls on different handles do not serialize.
#include "runtime/api/api_handles.h"

#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "runtime/core/status.h"

namespace shardlm::api {
namespace {

struct Registry {
  std::shared_mutex mu;
  std::unordered_map<const void*, HandleKind> live;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: handles may be released during exit
  return *r;
}

const char* kind_name(HandleKind kind) {
  switch (kind) {
    case HandleKind::kModel:
      return "shardlm_model";
    case HandleKind::kSession:
      return "shardlm_session";
    case HandleKind::kRequest:
      return "shardlm_request";
  }
  return "handle";
}

const char* release_call(HandleKind kind) {
  switch (kind) {
    case HandleKind::kModel:
      return "shardlm_model_close";
    case HandleKind::kSession:
      return "shardlm_session_destroy";
    case HandleKind::kRequest:
      return "shardlm_request_free";
  }
  return "";
}

}  // namespace

void track_handle(HandleKind kind, const void* handle) {
  Registry& r = registry();
  std::unique_lock lock(r.mu);
  r.live[handle] = kind;
}

bool untrack_handle(HandleKind kind, const void* handle) {
  Registry& r = registry();
  std::unique_lock lock(r.mu);
  auto it = r.live.find(handle);
  if (it == r.live.end() || it->second != kind) return false;
  r.live.erase(it);
  return true;
}

bool is_live(HandleKind kind, const void* handle) {
  if (handle == nullptr) return false;
  Registry& r = registry();
  std::shared_lock lock(r.mu);
  auto it = r.live.find(handle);
  return it != r.live.end() && it->second == kind;
}

void require_live(HandleKind kind, const void* handle, const char* what) {
  if (handle == nullptr) fail(StatusCode::kInvalidArg, std::string(what) + " is NULL");
  Registry& r = registry();
  std::shared_lock lock(r.mu);
  auto it = r.live.find(handle);
  if (it == r.live.end())
    fail(StatusCode::kInvalidArg, std::string(what) + " is not a live " + kind_name(kind) +
                                      " handle: it was released (" + release_call(kind) +
                                      ") or did not come from shardlm");
  if (it->second != kind)
    fail(StatusCode::kInvalidArg, std::string(what) + " is a " + kind_name(it->second) +
                                      " handle, not a " + kind_name(kind));
}

}  // namespace shardlm::api
