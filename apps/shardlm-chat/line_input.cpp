// LineInput: libedit's readline interface on a terminal, std::getline otherwise.
#include "line_input.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#ifdef SHARDLM_CHAT_HAS_LIBEDIT
#include <editline/readline.h>
#endif

namespace shardlm_chat {

LineInput::LineInput() {
  interactive_ = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
#ifdef SHARDLM_CHAT_HAS_LIBEDIT
  use_editline_ = interactive_;
  if (use_editline_) {
    using_history();
    if (const char* home = std::getenv("HOME")) {
      history_path_ = std::string(home) + "/.shardlm_chat_history";
      read_history(history_path_.c_str());  // missing file: fine
    }
  }
#endif
}

LineInput::~LineInput() {
#ifdef SHARDLM_CHAT_HAS_LIBEDIT
  if (use_editline_ && !history_path_.empty()) {
    stifle_history(1000);
    write_history(history_path_.c_str());
  }
#endif
}

std::optional<std::string> LineInput::read_one(const std::string& prompt) {
#ifdef SHARDLM_CHAT_HAS_LIBEDIT
  if (use_editline_) {
    char* line = readline(prompt.c_str());
    if (!line) return std::nullopt;
    std::string s(line);
    std::free(line);
    if (!s.empty()) add_history(s.c_str());
    return s;
  }
#endif
  if (interactive_) {
    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  std::string s;
  if (!std::getline(std::cin, s)) {
    std::cin.clear();
    return std::nullopt;
  }
  if (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

std::optional<std::string> LineInput::read(const std::string& prompt) {
  std::optional<std::string> line = read_one(prompt);
  while (line && !line->empty() && line->back() == '\\') {
    line->back() = '\n';
    std::optional<std::string> more = read_one("... ");
    if (!more) break;
    *line += *more;
  }
  return line;
}

}  // namespace shardlm_chat
