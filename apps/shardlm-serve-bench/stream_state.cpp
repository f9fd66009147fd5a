// StreamState and error_message (stream_state.h).
#include "apps/shardlm-serve-bench/stream_state.h"

#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace shardlm::serve_bench {
namespace {

using nlohmann::json;

// The text of one streamed chunk's first choice ("" when none).
std::string_view chunk_text(const json& chunk, Endpoint endpoint) {
  const auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array() || choices->empty()) return {};
  const json& c = (*choices)[0];
  if (!c.is_object()) return {};
  const auto text_of = [](const json& holder, const char* key) -> std::string_view {
    const auto v = holder.find(key);
    if (v == holder.end() || !v->is_string()) return {};
    return v->get_ref<const std::string&>();
  };
  if (endpoint == Endpoint::kCompletions) return text_of(c, "text");
  const auto d = c.find("delta");
  if (d == c.end() || !d->is_object()) return {};
  for (const char* key : {"content", "reasoning_content", "reasoning"}) {
    const std::string_view t = text_of(*d, key);
    if (!t.empty()) return t;
  }
  return {};
}

}  // namespace

std::string error_message(const std::string& body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    const auto e = j.find("error");
    if (e != j.end()) {
      if (e->is_string()) return e->get<std::string>();
      if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
        return (*e)["message"].get<std::string>();
      }
      return e->dump();
    }
    if (const auto d = j.find("detail"); d != j.end()) {
      return d->is_string() ? d->get<std::string>() : d->dump();
    }
  }
  std::string s = body.substr(0, 200);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "(empty body)" : s;
}

bool StreamState::on_event(const std::string& payload, Clock::time_point now) {
  if (payload == "[DONE]") {
    done_ = true;
    return true;
  }
  const json chunk = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (chunk.is_discarded() || !chunk.is_object()) {
    return fail("stream", "not a JSON object in the stream: " + payload.substr(0, 120));
  }
  if (const auto e = chunk.find("error"); e != chunk.end() && !e->is_null()) {
    return fail("stream error", "error in the stream: " + error_message(chunk.dump()));
  }
  if (const auto u = chunk.find("usage"); u != chunk.end() && u->is_object()) {
    const auto ct = u->find("completion_tokens");
    if (ct != u->end() && ct->is_number_integer()) {
      out_.completion_tokens = ct->get<int64_t>();
      out_.usage_reported = true;
    }
  }
  if (!chunk_text(chunk, endpoint_).empty()) {
    if (out_.text_chunks == 0) {
      out_.ttft_s = seconds(start_, now);
    } else {
      out_.itl_s.push_back(seconds(last_text_, now));
    }
    last_text_ = now;
    ++out_.text_chunks;
  }
  return true;
}

bool StreamState::fail(std::string kind, std::string message) {
  out_.error_kind = std::move(kind);
  out_.error = std::move(message);
  return false;
}

}  // namespace shardlm::serve_bench
