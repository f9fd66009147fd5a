// shardlm-chat: an interactive chat REPL over libshardlm's C ABI (shardlm.h only): streaming
// answers, multi-turn through the chat template with KV reuse, /commands, line editing and
// history on a terminal, and plain stdin for scripts. See repl.h; flags in options.h.
#include <cstdio>
#include <exception>

#include "options.h"
#include "repl.h"

int main(int argc, char** argv) {
  try {
    std::optional<shardlm_chat::ChatOptions> options = shardlm_chat::parse_args(argc, argv);
    if (!options) return 0;
    shardlm_chat::Repl repl(std::move(*options));
    return repl.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardlm-chat: %s\n", e.what());
    return 2;
  }
}
