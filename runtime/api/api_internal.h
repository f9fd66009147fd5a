// Internals shared by the extern "C" shims (not installed): the handle structs behind the
// opaque types of shardlm.h, the thread-local last-error message, the guard that turns every
// C++ exception into a shardlm_status, and the struct_size / two-call-sizing helpers.
// Nothing here is visible outside libshardlm.so (the version script exports shardlm_* only).
#pragma once

#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "runtime/api/api_handles.h"
#include "runtime/core/status.h"
#include "runtime/engine/engine.h"
#include "runtime/engine/model_text.h"
#include "runtime/engine/serving_loop.h"
#include "runtime/engine/session.h"
#include "runtime/include/shardlm.h"

namespace shardlm::api {

// What a shardlm_model handle refers to; shared with its sessions so they outlive a close.
struct ModelState {
  std::shared_ptr<Engine> engine;
  std::shared_ptr<ServingLoop> loop;  // the step engine every session and request shares
  std::shared_ptr<const ModelText> text;
  std::string family, architecture, backend, weight_dtype;
};

// The model's serving loop; throws Error(kInvalidArg) on a rank of ranks as processes that only
// serves steps (rank 0 drives).
inline ServingLoop& serving_loop(const ModelState& m) {
  if (!m.loop) {
    fail(StatusCode::kInvalidArg, "rank " + std::to_string(m.engine->process_rank()) +
                                      " only serves steps (shardlm_model_serve); sessions and "
                                      "requests run on rank 0");
  }
  return *m.loop;
}

// The calling thread's last error message.
std::string& last_error_storage();
shardlm_status set_error(shardlm_status status, const std::string& message);
shardlm_status to_status(StatusCode code);

// Runs `fn` (returning shardlm_status) with the last error cleared; any exception becomes a
// status and a message. Never throws.
template <class Fn>
shardlm_status guard(Fn&& fn) noexcept {
  try {
    last_error_storage().clear();
    return fn();
  } catch (const Error& e) {
    return set_error(to_status(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return set_error(SHARDLM_ERR_OOM, "out of memory");
  } catch (const std::exception& e) {
    return set_error(SHARDLM_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(SHARDLM_ERR_INTERNAL, "internal error: unknown exception");
  }
}

// Handles (shardlm_model*, ...) are checked with require_live() from api_handles.h instead.
// Throws Error(kInvalidArg) "<what> is NULL".
void require(const void* p, const char* what);
// Throws Error(kInvalidArg) unless given == expected, naming the struct and both sizes.
void check_struct_size(size_t given, size_t expected, const char* struct_name);
// For structs that grew across ABI versions: accepts any size from the oldest layout's
// (`oldest`) to this library's (`current`).
void check_struct_size_range(size_t given, size_t oldest, size_t current, const char* struct_name);

// Two-call sizing: *out_len = text.size(); copies text + NUL when buf holds it.
shardlm_status copy_out(std::string_view text, char* buf, size_t buf_size, size_t* out_len,
                        const char* what);
// The same in elements of int32_t.
shardlm_status copy_out(const int32_t* ids, size_t n, int32_t* buf, size_t capacity,
                        size_t* out_count, const char* what);

}  // namespace shardlm::api

struct shardlm_model {
  std::shared_ptr<shardlm::api::ModelState> state;
};

struct shardlm_session {
  std::shared_ptr<shardlm::api::ModelState> model;
  std::unique_ptr<shardlm::Session> session;
};
