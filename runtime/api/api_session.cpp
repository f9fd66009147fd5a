// extern "C": sessions (create/destroy, conversation state) and generation with streaming.
#include "runtime/api/api_internal.h"
#include "runtime/api/api_params.h"

using namespace shardlm;
using namespace shardlm::api;

namespace {

Session& session_of(shardlm_session* s) {
  require_live(HandleKind::kSession, s, "session");
  return *s->session;
}

const Session& session_of(const shardlm_session* s) {
  require_live(HandleKind::kSession, s, "session");
  return *s->session;
}

// Runs one generation call: request from params, callback adapter, result, status.
template <class Call>
shardlm_status generate(shardlm_session* s, const shardlm_generate_params* params,
                        shardlm_stream_callback callback, void* user_data,
                        shardlm_generate_result* out, const Call& call) {
  Session& session = session_of(s);
  check_result_struct(out);
  const GenerationRequest req =
      to_request(params, session.text(), session.engine().config().n_vocab);
  StreamFn fn;
  if (callback) {
    fn = [&](int32_t token, std::string_view text) {
      const std::string piece(text);  // NUL-terminated copy
      return callback(token, piece.c_str(), piece.size(), user_data) == 0;
    };
  }
  const GenerationResult r = call(session, req, fn);
  fill_result(r, session.n_ctx_used(), out);
  if (r.finish == FinishReason::kCancelled) {
    return set_error(SHARDLM_ERR_CANCELLED,
                     "generation cancelled by shardlm_session_cancel after " +
                         std::to_string(r.tokens.size()) + " tokens");
  }
  return SHARDLM_OK;
}

}  // namespace

extern "C" {

SHARDLM_API shardlm_session_params shardlm_session_default_params(void) {
  shardlm_session_params p;
  std::memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.enable_thinking = -1;
  return p;
}

SHARDLM_API shardlm_status shardlm_session_create(shardlm_model* model,
                                                  const shardlm_session_params* params,
                                                  shardlm_session** out_session) {
  return guard([&] {
    require(out_session, "out_session");
    *out_session = nullptr;
    require_live(HandleKind::kModel, model, "model");
    const shardlm_session_params p = params ? *params : shardlm_session_default_params();
    check_struct_size(p.struct_size, sizeof(shardlm_session_params), "shardlm_session_params");
    if (p.enable_thinking < -1 || p.enable_thinking > 1) {
      fail(StatusCode::kInvalidArg, "enable_thinking must be -1, 0 or 1");
    }
    auto s = std::make_unique<shardlm_session>();
    s->model = model->state;
    serving_loop(*model->state);  // throws on a rank that only serves steps
    s->session = std::make_unique<Session>(model->state->loop, model->state->text);
    if (p.system_prompt) s->session->set_system(p.system_prompt);
    if (p.enable_thinking >= 0) s->session->set_thinking(p.enable_thinking == 1);
    *out_session = s.release();
    track_handle(HandleKind::kSession, *out_session);
    return SHARDLM_OK;
  });
}

SHARDLM_API void shardlm_session_destroy(shardlm_session* session) {
  // NULL, a second destroy, or a pointer that is not a live session is ignored (api_handles.h).
  if (!untrack_handle(HandleKind::kSession, session)) return;
  try {
    delete session;
  } catch (...) {  // destructors do not throw; nothing may cross the boundary regardless
  }
}

SHARDLM_API shardlm_status shardlm_session_set_system(shardlm_session* session, const char* text) {
  return guard([&] {
    session_of(session).set_system(text ? text : "");
    return SHARDLM_OK;
  });
}

SHARDLM_API shardlm_status shardlm_session_set_thinking(shardlm_session* session, int32_t enable) {
  return guard([&] {
    Session& s = session_of(session);
    if (enable < -1 || enable > 1) fail(StatusCode::kInvalidArg, "enable must be -1, 0 or 1");
    s.set_thinking(enable < 0 ? std::nullopt : std::optional<bool>(enable == 1));
    return SHARDLM_OK;
  });
}

SHARDLM_API shardlm_status shardlm_session_add_message(shardlm_session* session, const char* role,
                                                       const char* content) {
  return guard([&] {
    Session& s = session_of(session);
    require(role, "role");
    require(content, "content");
    s.add_message(role, content);
    return SHARDLM_OK;
  });
}

SHARDLM_API shardlm_status shardlm_session_reset(shardlm_session* session) {
  return guard([&] {
    session_of(session).reset();
    return SHARDLM_OK;
  });
}

SHARDLM_API shardlm_status shardlm_session_truncate(shardlm_session* session, int32_t n_turns,
                                                    int32_t* out_dropped) {
  return guard([&] {
    Session& s = session_of(session);
    const int dropped = s.truncate_turns(n_turns);
    if (out_dropped) *out_dropped = dropped;
    return SHARDLM_OK;
  });
}

SHARDLM_API shardlm_status shardlm_session_chat(shardlm_session* session, const char* user_message,
                                                const shardlm_generate_params* params,
                                                shardlm_stream_callback callback, void* user_data,
                                                shardlm_generate_result* out_result) {
  return guard([&] {
    require(user_message, "user_message");
    return generate(session, params, callback, user_data, out_result,
                    [&](Session& s, const GenerationRequest& r, const StreamFn& fn) {
                      return s.chat(user_message, r, fn);
                    });
  });
}

SHARDLM_API shardlm_status shardlm_session_complete(shardlm_session* session, const char* prompt,
                                                    const shardlm_generate_params* params,
                                                    shardlm_stream_callback callback,
                                                    void* user_data,
                                                    shardlm_generate_result* out_result) {
  return guard([&] {
    require(prompt, "prompt");
    return generate(session, params, callback, user_data, out_result,
                    [&](Session& s, const GenerationRequest& r, const StreamFn& fn) {
                      return s.complete(prompt, r, fn);
                    });
  });
}

SHARDLM_API shardlm_status shardlm_session_complete_tokens(shardlm_session* session,
                                                           const int32_t* prompt, size_t n_prompt,
                                                           const shardlm_generate_params* params,
                                                           shardlm_stream_callback callback,
                                                           void* user_data,
                                                           shardlm_generate_result* out_result) {
  return guard([&] {
    if (n_prompt > 0) require(prompt, "prompt");
    return generate(session, params, callback, user_data, out_result,
                    [&](Session& s, const GenerationRequest& r, const StreamFn& fn) {
                      return s.complete_tokens(std::span<const int32_t>(prompt, n_prompt), r, fn);
                    });
  });
}

SHARDLM_API void shardlm_session_cancel(shardlm_session* session) {
  if (session && session->session) session->session->cancel();
}

SHARDLM_API shardlm_status shardlm_session_get_info(const shardlm_session* session,
                                                    shardlm_session_info* out) {
  return guard([&] {
    const Session& s = session_of(session);
    require(out, "out (shardlm_session_info)");
    check_struct_size(out->struct_size, sizeof(shardlm_session_info), "shardlm_session_info");
    shardlm_session_info i;
    std::memset(&i, 0, sizeof i);
    i.struct_size = sizeof i;
    i.n_ctx = s.n_ctx();
    i.n_ctx_used = s.n_ctx_used();
    i.n_kv = s.n_in_kv();
    i.n_messages = static_cast<int32_t>(s.messages().size());
    i.n_turns = s.n_turns();
    i.has_system = !s.system().empty();
    i.enable_thinking = s.thinking() ? (*s.thinking() ? 1 : 0) : -1;
    *out = i;
    return SHARDLM_OK;
  });
}

SHARDLM_API shardlm_status shardlm_session_last_reply(const shardlm_session* session, char* buf,
                                                      size_t buf_size, size_t* out_len) {
  return guard([&] {
    return copy_out(session_of(session).last_reply(), buf, buf_size, out_len,
                    "shardlm_session_last_reply");
  });
}

SHARDLM_API shardlm_status shardlm_session_tokens(const shardlm_session* session, int32_t* ids,
                                                  size_t capacity, size_t* out_count) {
  return guard([&] {
    const std::vector<int32_t>& t = session_of(session).tokens();
    return copy_out(t.data(), t.size(), ids, capacity, out_count, "shardlm_session_tokens");
  });
}

}  // extern "C"
