// Where shardlm-chat's lines come from: libedit (line editing, history in ~/.shardlm_chat_history)
// when stdin is a terminal and the build has libedit, else plain reads from stdin (pipes,
// files, scripts). Not a parser: commands are repl.cpp's job.
#pragma once

#include <optional>
#include <string>

namespace shardlm_chat {

class LineInput {
 public:
  LineInput();
  ~LineInput();
  LineInput(const LineInput&) = delete;
  LineInput& operator=(const LineInput&) = delete;

  bool interactive() const { return interactive_; }
  // The next line without its newline; nullopt at end of input (Ctrl-D, EOF).
  // A line ending in '\' continues on the next one (joined with '\n').
  std::optional<std::string> read(const std::string& prompt);

 private:
  std::optional<std::string> read_one(const std::string& prompt);
  bool interactive_ = false;
  bool use_editline_ = false;
  std::string history_path_;
};

}  // namespace shardlm_chat
