// Fuzz target: a request body of POST /v1/chat/completions and of POST /v1/completions, parsed
// as shardlm-serve parses it; a chat request that parses is rendered with Qwen3's chat template
// (tests/data), as the server renders it before tokenizing. A bad body must give an ApiError
// with a 4xx status and a message (what the client sees), never another exception.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "apps/shardlm-serve/api_error.h"
#include "apps/shardlm-serve/openai_request.h"
#include "fuzz_util.h"
#include "runtime/text/chat_template.h"

#ifndef SHARDLM_TESTDATA_DIR
#error "SHARDLM_TESTDATA_DIR must name tests/data"
#endif

namespace {

std::unique_ptr<shardlm::text::ChatTemplate> g_template;

std::string read_text(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) shardlm::fuzz::finding("cannot read " + path);
  std::string s;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  std::fclose(f);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string config =
      read_text(std::string(SHARDLM_TESTDATA_DIR) + "/tokenizer/qwen3/tokenizer_config.json");
  g_template =
      std::make_unique<shardlm::text::ChatTemplate>(shardlm::text::select_chat_template(config));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardlm;
  using serve::Endpoint;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  SamplerParams defaults;
  for (const Endpoint endpoint : {Endpoint::kChat, Endpoint::kCompletions}) {
    try {
      const serve::CompletionRequest r = serve::parse_completion_request(body, endpoint, defaults);
      fuzz::check(r.n >= 1 && r.n <= serve::kMaxChoices,
                  "n outside [1, kMaxChoices] after parsing");
      if (endpoint == Endpoint::kChat)
        fuzz::expect_clear_error(
            [&] { (void)g_template->render(r.messages, true, r.template_kwargs); });
    } catch (const serve::ApiError& e) {
      fuzz::check(e.status() >= 400 && e.status() < 500,
                  "an ApiError with status " + std::to_string(e.status()));
      fuzz::check(std::string_view(e.what()).size() > 0, "an ApiError without a message");
    } catch (const std::exception& e) {
      fuzz::finding(std::string("parse_completion_request threw something other than ApiError: ") +
                    e.what());
    }
  }
  return 0;
}
