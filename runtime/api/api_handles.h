// The live handles of the C ABI: every shardlm_model, shardlm_session and shardlm_request the
// library has handed out and not yet released. Each call checks its handle here before using it,
// so a handle that was already closed/destroyed/freed, a handle of the wrong kind, or a pointer
// that never came from shardlm gets INVALID_ARG instead of a use-after-free, and releasing a
// handle twice does nothing. Limits: a stale pointer whose address a newer handle of the same kind
// now occupies cannot be told apart, and nothing here makes a release that races another call on
// the same handle safe (the header forbids that).
#pragma once

namespace shardlm::api {

enum class HandleKind { kModel, kSession, kRequest };

// Records a handle just handed out.
void track_handle(HandleKind kind, const void* handle);
// Forgets a handle about to be released; false (and nothing forgotten) when it is not live.
bool untrack_handle(HandleKind kind, const void* handle);
// True when `handle` is a live handle of `kind` (NULL: false).
bool is_live(HandleKind kind, const void* handle);
// Throws Error(kInvalidArg) "<what> is NULL" or "<what> is not a live <kind> handle (...)".
void require_live(HandleKind kind, const void* handle, const char* what);

}  // namespace shardlm::api
