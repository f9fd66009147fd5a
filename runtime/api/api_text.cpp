// extern "C": tokenize, detokenize, apply the chat template.
#include <nlohmann/json.hpp>

#include "runtime/api/api_internal.h"

using namespace shardlm;
using namespace shardlm::api;

extern "C" {

SHARDLM_API shardlm_status shardlm_tokenize(const shardlm_model* model, const char* text,
                                            size_t text_len, int32_t add_special, int32_t* ids,
                                            size_t capacity, size_t* out_count) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    if (text_len > 0) require(text, "text");
    const std::string_view view(text ? text : "", text_len);
    const std::vector<int32_t> out = model->state->text->tokenizer().encode(view, add_special != 0);
    return copy_out(out.data(), out.size(), ids, capacity, out_count, "shardlm_tokenize");
  });
}

SHARDLM_API shardlm_status shardlm_detokenize(const shardlm_model* model, const int32_t* ids,
                                              size_t n_ids, int32_t skip_special, char* buf,
                                              size_t buf_size, size_t* out_len) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    if (n_ids > 0) require(ids, "ids");
    const int64_t n_vocab = model->state->engine->config().n_vocab;
    std::vector<int32_t> v(ids, ids + n_ids);
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] < 0 || v[i] >= n_vocab) {
        fail(StatusCode::kInvalidArg, "ids[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
                                          " is outside the vocabulary of " +
                                          std::to_string(n_vocab));
      }
    }
    const std::string text = model->state->text->tokenizer().decode(v, skip_special != 0);
    return copy_out(text, buf, buf_size, out_len, "shardlm_detokenize");
  });
}

SHARDLM_API shardlm_status shardlm_apply_chat_template(const shardlm_model* model,
                                                       const shardlm_chat_message* messages,
                                                       size_t n_messages,
                                                       int32_t add_generation_prompt,
                                                       const char* extra_json, char* buf,
                                                       size_t buf_size, size_t* out_len) {
  return guard([&] {
    require_live(HandleKind::kModel, model, "model");
    if (n_messages > 0) require(messages, "messages");
    nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
    for (size_t i = 0; i < n_messages; ++i) {
      if (!messages[i].role || !messages[i].content) {
        fail(StatusCode::kInvalidArg, "messages[" + std::to_string(i) + "]." +
                                          (messages[i].role ? "content" : "role") + " is NULL");
      }
      msgs.push_back({{"role", messages[i].role}, {"content", messages[i].content}});
    }
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
    if (extra_json && *extra_json) {
      try {
        extra = nlohmann::ordered_json::parse(extra_json);
      } catch (const nlohmann::json::exception& e) {
        fail(StatusCode::kInvalidArg, std::string("extra_json is not valid JSON: ") + e.what());
      }
      if (!extra.is_object()) fail(StatusCode::kInvalidArg, "extra_json must be a JSON object");
    }
    const std::string text = model->state->text->render(msgs, add_generation_prompt != 0, extra);
    return copy_out(text, buf, buf_size, out_len, "shardlm_apply_chat_template");
  });
}

}  // extern "C"
