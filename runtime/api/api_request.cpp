// extern "C": request-level generation (submit / wait / cancel / tokens / free) and the step
// engine's counters. A request is one TokenRequest on the model's ServingLoop; waiting reads its
// token stream on the caller's thread with the same text streaming as sessions.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>

#include "runtime/api/api_internal.h"
#include "runtime/api/api_params.h"
#include "runtime/engine/stream_reader.h"

using namespace shardlm;
using namespace shardlm::api;

struct shardlm_request {
  std::shared_ptr<ModelState> model;
  std::shared_ptr<RequestStream> stream;
  GenerationRequest request;
  int64_t n_prompt = 0;
  std::chrono::steady_clock::time_point submitted;
  bool waited = false;
  std::vector<int32_t> tokens;
};

namespace {

shardlm_status submit(shardlm_model* model, std::vector<int32_t> ids,
                      const shardlm_generate_params* params, shardlm_request** out) {
  require_live(HandleKind::kModel, model, "model");
  require(out, "out_request");
  *out = nullptr;
  ModelState& m = *model->state;
  auto r = std::make_unique<shardlm_request>();
  r->model = model->state;
  r->submitted = std::chrono::steady_clock::now();
  r->request = to_request(params, *m.text, m.engine->config().n_vocab);
  r->n_prompt = static_cast<int64_t>(ids.size());
  TokenRequest tr;
  tr.prompt = std::move(ids);
  tr.sampling = r->request.sampling;
  tr.max_new_tokens = r->request.max_new_tokens;
  tr.stop_ids = r->request.stop_ids;
  if (!r->request.ignore_eos)
    tr.stop_ids.insert(tr.stop_ids.end(), m.text->stop_ids().begin(), m.text->stop_ids().end());
  r->stream = serving_loop(m).submit(std::move(tr));
  *out = r.release();
  track_handle(HandleKind::kRequest, *out);
  return SHARDLM_OK;
}

}  // namespace

extern "C" {

SHARDLM_API shardlm_status shardlm_request_submit_tokens(shardlm_model* model,
                                                         const int32_t* ids, size_t n_ids,
                                                         const shardlm_generate_params* params,
                                                         shardlm_request** out_request) {
  return guard([&] {
    if (n_ids > 0) require(ids, "ids");
    return submit(model, std::vector<int32_t>(ids, ids + n_ids), params, out_request);
  });
}

SHARDLM_API shardlm_status shardlm_request_submit(shardlm_model* model, const char* prompt,
                                                  const shardlm_generate_params* params,
                                                  shardlm_request** out_request) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    require(prompt, "prompt");
    const ModelText& text = *model->state->text;
    if (!text.has_tokenizer()) {
      fail(StatusCode::kUnsupported, "this pack has no tokenizer: submit token ids instead");
    }
    // A prompt far beyond the context is refused from its length, before tokenizing all of it.
    const int64_t at_least = text.tokenizer().min_tokens(prompt);
    const int64_t n_ctx = model->state->engine->n_ctx();
    if (at_least >= n_ctx) {
      fail(StatusCode::kKvFull, "prompt of at least " + std::to_string(at_least) +
                                    " tokens leaves no room to generate in a context of " +
                                    std::to_string(n_ctx) + " tokens (n_ctx)");
    }
    return submit(model, text.tokenizer().encode(prompt, /*add_special_tokens=*/true), params,
                  out_request);
  });
}

SHARDLM_API shardlm_status shardlm_request_wait(shardlm_request* request,
                                                shardlm_stream_callback callback, void* user_data,
                                                shardlm_generate_result* out_result) {
  return guard([&] {
    require_live(HandleKind::kRequest, request, "request");
    check_result_struct(out_result);
    if (request->waited) fail(StatusCode::kInvalidArg, "this request was waited on already");
    request->waited = true;
    StreamFn fn;
    if (callback) {
      fn = [&](int32_t token, std::string_view text) {
        const std::string piece(text);  // NUL-terminated copy
        return callback(token, piece.c_str(), piece.size(), user_data) == 0;
      };
    }
    GenerationResult r =
        read_stream(*request->stream, request->request, *request->model->text, fn, nullptr, {},
                    request->submitted, request->n_prompt);
    if (!r.tokens.empty() || r.finish == FinishReason::kStopToken) r.ttft_seconds = r.prefill_seconds;
    request->tokens = r.tokens;
    fill_result(r, r.n_prompt + static_cast<int64_t>(r.tokens.size()), out_result);
    if (r.finish == FinishReason::kCancelled) {
      return set_error(SHARDLM_ERR_CANCELLED, "request cancelled by shardlm_request_cancel after " +
                                                  std::to_string(r.tokens.size()) + " tokens");
    }
    return SHARDLM_OK;
  });
}

SHARDLM_API void shardlm_request_cancel(shardlm_request* request) {
  if (is_live(HandleKind::kRequest, request) && request->stream) request->stream->cancel();
}

SHARDLM_API shardlm_status shardlm_request_tokens(const shardlm_request* request, int32_t* ids,
                                                  size_t capacity, size_t* out_count) {
  return guard([&] {
    require_live(HandleKind::kRequest, request, "request");
    if (!request->waited) fail(StatusCode::kInvalidArg, "wait on the request before reading tokens");
    return copy_out(request->tokens.data(), request->tokens.size(), ids, capacity, out_count,
                    "shardlm_request_tokens");
  });
}

SHARDLM_API void shardlm_request_free(shardlm_request* request) {
  // NULL, a second free, or a pointer that is not a live request is ignored (api_handles.h).
  if (!untrack_handle(HandleKind::kRequest, request)) return;
  if (request->stream) request->stream->cancel();  // no effect once it has ended
  delete request;
}

SHARDLM_API shardlm_status shardlm_model_get_stats(const shardlm_model* model,
                                                   shardlm_engine_stats* out) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    require(out, "out (shardlm_engine_stats)");
    const size_t size = out->struct_size;
    check_struct_size_range(size, offsetof(shardlm_engine_stats, spec_verifications),
                            sizeof(shardlm_engine_stats), "shardlm_engine_stats");
    const StepEngineStats st = serving_loop(*model->state).stats();
    shardlm_engine_stats o;
    std::memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.n_steps = st.n_steps;
    o.n_running = st.n_running;
    o.n_waiting = st.n_waiting;
    o.n_blocks = st.n_blocks;
    o.n_blocks_used = st.n_blocks_used;
    o.n_blocks_cached = st.n_blocks_cached;
    o.block_size = static_cast<int32_t>(model->state->engine->kv_pool_shape().block_size);
    o.n_preemptions = st.n_preemptions;
    o.prefix_queried_tokens = st.prefix_queried_tokens;
    o.prefix_hit_tokens = st.prefix_hit_tokens;
    o.tokens_computed = st.tokens_computed;
    o.max_seqs_in_a_step = st.max_seqs_in_a_step;
    o.spec_verifications = st.spec_verifications;
    o.spec_proposed = st.spec_proposed;
    o.spec_accepted = st.spec_accepted;
    o.spec_emitted = st.spec_emitted;
    o.draft_steps = st.draft_steps;
    o.struct_size = size;
    std::memcpy(out, &o, size);  // an ABI-2 caller's struct ends before the spec_* counters
    return SHARDLM_OK;
  });
}

}  // extern "C"
