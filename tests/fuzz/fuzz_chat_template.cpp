// Fuzz target: a chat template (Jinja source) parsed and rendered with fuzzed messages, as a
// pack's template is when a chat request arrives. Input: template, NUL, messages JSON, NUL,
// extra variables JSON (missing or invalid parts: a fixed four-message conversation, no extra
// variables). Parse errors must be Error(kFormat), render errors Error(kInvalidArg), and the
// sandbox's limits (loop iterations, call depth, output size) must hold, so a template that
// loops or expands ends with an error instead of running long (a slow input is a finding).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "runtime/text/chat_template.h"

namespace {

using nlohmann::ordered_json;

ordered_json parse_or(const std::string& text, ordered_json fallback, bool want_array) {
  ordered_json j = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || (want_array ? !j.is_array() : !j.is_object())) return fallback;
  return j;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardlm;
  const std::vector<std::string> parts = fuzz::split_parts(data, size, 3);
  static const ordered_json kMessages = ordered_json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi <b>there</b>"},
    {"role": "assistant", "content": "Hello.", "reasoning_content": "greet"},
    {"role": "user", "content": [{"type": "text", "text": "more"}]}])");
  const ordered_json messages = parse_or(parts.size() > 1 ? parts[1] : "", kMessages, true);
  const ordered_json extra =
      parse_or(parts.size() > 2 ? parts[2] : "", ordered_json::object(), false);
  text::ChatTemplateLimits limits;
  limits.max_output_bytes = 1u << 20;
  limits.max_loop_iterations = 100000;
  std::unique_ptr<text::ChatTemplate> tmpl;
  try {
    tmpl = std::make_unique<text::ChatTemplate>(parts[0], limits);
  } catch (const Error& e) {
    fuzz::check(e.code() == StatusCode::kFormat,
                std::string("a parse error that is not kFormat: ") + e.what());
    return 0;
  }
  fuzz::expect_clear_error([&] {
    const std::string out = tmpl->render(messages, size % 2 == 0, extra, "<s>", "</s>");
    fuzz::check(out.size() <= limits.max_output_bytes, "render went past max_output_bytes");
  });
  return 0;
}
