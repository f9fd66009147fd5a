// parse_completion_request: JSON -> CompletionRequest with OpenAI's field checks.
#include "apps/shardlm-serve/openai_request.h"

#include <cmath>
#include <limits>

#include "apps/shardlm-serve/api_error.h"

namespace shardlm::serve {

namespace {

using Json = nlohmann::ordered_json;

const Json* field(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;  // null = absent, as OpenAI treats it
  return &*it;
}

double number_in(const Json& body, const char* name, double lo, double hi, double fallback) {
  const Json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) bad_request(std::string("'") + name + "' must be a number", name);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    bad_request(std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
                    std::to_string(hi) + ", got " + v->dump(),
                name);
  }
  return x;
}

int64_t integer_in(const Json& body, const char* name, int64_t lo, int64_t hi, int64_t fallback) {
  const Json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number_integer()) bad_request(std::string("'") + name + "' must be an integer", name);
  // Unsigned values past int64 do not fit any range asked for here.
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
    bad_request(std::string("'") + name + "' must be at most " + std::to_string(hi), name);
  }
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) {
    bad_request(std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
                    std::to_string(hi) + ", got " + std::to_string(x),
                name);
  }
  return x;
}

bool boolean(const Json& body, const char* name, bool fallback) {
  const Json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad_request(std::string("'") + name + "' must be a boolean", name);
  return v->get<bool>();
}

// Message content: a string, or a list of {"type": "text", "text": ...} parts joined.
std::string message_content(const Json& content, const std::string& param) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad_request("'content' must be a string or a list of parts", param);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      bad_request("each content part must be an object with a 'type'", p);
    }
    if (part["type"] != "text") {
      bad_request("content parts of type " + part["type"].dump() +
                      " are not supported; this model takes text",
                  p);
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      bad_request("a text part needs a string 'text'", p);
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

Json parse_messages(const Json& body) {
  const Json* m = field(body, "messages");
  if (!m) bad_request("'messages' is required", "messages");
  if (!m->is_array() || m->empty()) bad_request("'messages' must be a non-empty list", "messages");
  Json out = Json::array();
  for (size_t i = 0; i < m->size(); ++i) {
    const Json& msg = (*m)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) bad_request("each message must be an object", p);
    if (!msg.contains("role") || !msg["role"].is_string()) {
      bad_request("each message needs a string 'role'", p + ".role");
    }
    const std::string role = msg["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" &&
        role != "developer") {
      bad_request(
          "unknown role '" + role + "': expected system, developer, user, assistant or tool",
          p + ".role");
    }
    const bool has_content = msg.contains("content") && !msg["content"].is_null();
    if (!has_content && role != "assistant") {
      bad_request("a " + role + " message needs 'content'", p + ".content");
    }
    Json norm = msg;  // keep extra keys (name, tool_calls) for templates that use them
    norm["role"] = role == "developer" ? "system" : role;
    norm["content"] = has_content ? message_content(msg["content"], p + ".content") : "";
    out.push_back(std::move(norm));
  }
  return out;
}

std::vector<int32_t> token_ids(const Json& arr, const std::string& param) {
  std::vector<int32_t> ids;
  for (const Json& t : arr) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
        t.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      bad_request("token ids must be non-negative integers", param);
    }
    ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  if (ids.empty()) bad_request("a prompt of token ids must not be empty", param);
  return ids;
}

std::vector<PromptInput> parse_prompts(const Json& body) {
  const Json* p = field(body, "prompt");
  if (!p) bad_request("'prompt' is required", "prompt");
  std::vector<PromptInput> out;
  auto text = [&](const Json& s) {
    PromptInput in;
    in.text = s.get<std::string>();
    out.push_back(std::move(in));
  };
  auto ids = [&](const Json& a) {
    PromptInput in;
    in.ids = token_ids(a, "prompt");
    in.is_ids = true;
    out.push_back(std::move(in));
  };
  if (p->is_string()) {
    text(*p);
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    ids(*p);  // one prompt of token ids
  } else if (p->is_array() && !p->empty()) {
    for (const Json& e : *p) {
      if (e.is_string()) {
        text(e);
      } else if (e.is_array()) {
        ids(e);
      } else {
        bad_request("'prompt' must be a string, a list of strings or a list of token-id lists",
                    "prompt");
      }
    }
  } else {
    bad_request(
        "'prompt' must be a string, a list of token ids, a list of strings or a list of "
        "token-id lists (not empty)",
        "prompt");
  }
  return out;
}

std::vector<std::string> parse_stop(const Json& body) {
  const Json* s = field(body, "stop");
  if (!s) return {};
  if (s->is_string()) return {s->get<std::string>()};
  if (!s->is_array()) bad_request("'stop' must be a string or a list of strings", "stop");
  std::vector<std::string> out;
  for (const Json& e : *s) {
    if (!e.is_string()) bad_request("'stop' must be a string or a list of strings", "stop");
    if (!e.get<std::string>().empty()) out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body_text, Endpoint endpoint,
                                           const SamplerParams& defaults) {
  Json body;
  try {
    body = Json::parse(body_text);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's message names the byte offset and, for bad text, the invalid UTF-8.
    bad_request(std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) bad_request("the request body must be a JSON object");

  CompletionRequest r;
  r.endpoint = endpoint;
  if (const Json* m = field(body, "model")) {
    if (!m->is_string()) bad_request("'model' must be a string", "model");
    r.model = m->get<std::string>();
  }
  if (endpoint == Endpoint::kChat) {
    // Features a client relies on must not be dropped silently.
    if (const Json* t = field(body, "tools"); t && !(t->is_array() && t->empty())) {
      bad_request("tool calling is not supported by this server", "tools");
    }
    if (const Json* f = field(body, "response_format");
        f && !(f->is_object() && f->value("type", "") == "text")) {
      bad_request("only response_format {\"type\": \"text\"} is supported", "response_format");
    }
    r.messages = parse_messages(body);
    if (const Json* k = field(body, "chat_template_kwargs")) {
      if (!k->is_object()) {
        bad_request("'chat_template_kwargs' must be an object", "chat_template_kwargs");
      }
      r.template_kwargs = *k;
    }
  } else {
    r.prompts = parse_prompts(body);
  }

  SamplerParams& s = r.sampling;
  s = defaults;
  s.temperature = static_cast<float>(number_in(body, "temperature", 0, 2, defaults.temperature));
  s.top_p = static_cast<float>(number_in(body, "top_p", 0, 1, defaults.top_p));
  if (s.top_p <= 0) bad_request("'top_p' must be greater than 0", "top_p");
  const int64_t top_k =
      integer_in(body, "top_k", -1, std::numeric_limits<int32_t>::max(), defaults.top_k);
  s.top_k = top_k < 0 ? 0 : static_cast<int32_t>(top_k);  // -1 = off, as vLLM
  s.min_p = static_cast<float>(number_in(body, "min_p", 0, 1, defaults.min_p));
  s.presence_penalty =
      static_cast<float>(number_in(body, "presence_penalty", -2, 2, defaults.presence_penalty));
  s.frequency_penalty =
      static_cast<float>(number_in(body, "frequency_penalty", -2, 2, defaults.frequency_penalty));
  s.repetition_penalty =
      static_cast<float>(number_in(body, "repetition_penalty", 0, 10, defaults.repetition_penalty));
  if (s.repetition_penalty <= 0) {
    bad_request("'repetition_penalty' must be greater than 0", "repetition_penalty");
  }
  if (const Json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) bad_request("'seed' must be an integer", "seed");
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                        : static_cast<uint64_t>(seed->get<int64_t>());
    r.seeded = true;
  }

  const int64_t huge = std::numeric_limits<int32_t>::max();
  r.max_tokens = integer_in(body, "max_tokens", 1, huge, -1);
  r.max_tokens = integer_in(body, "max_completion_tokens", 1, huge, r.max_tokens);
  r.stop = parse_stop(body);
  r.n = static_cast<int>(integer_in(body, "n", 1, kMaxChoices, 1));
  r.stream = boolean(body, "stream", false);
  if (const Json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad_request("'stream_options' must be an object", "stream_options");
    r.include_usage = boolean(*so, "include_usage", false);
  }
  r.ignore_eos = boolean(body, "ignore_eos", false);

  if (endpoint == Endpoint::kChat) {
    r.logprobs = boolean(body, "logprobs", false);
    r.top_logprobs = static_cast<int>(integer_in(body, "top_logprobs", 0, 20, 0));
    if (field(body, "top_logprobs") && !r.logprobs) {
      bad_request("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
    }
  } else {
    // Legacy completions: logprobs is the number of alternatives (0..5), null = none.
    if (field(body, "logprobs")) {
      r.logprobs = true;
      r.top_logprobs = static_cast<int>(integer_in(body, "logprobs", 0, 5, 0));
    }
  }
  return r;
}

}  // namespace shardlm::serve
