// The chat loop of shardlm-chat over the C ABI only: opens the model, prints the start-up summary
// (model, tp, backend, context, sampling, memory plan), then reads lines: text is a chat turn
// streamed to stdout; /commands change the conversation or the sampling. Ctrl-C during an answer
// cancels it (the partial answer stays in the conversation); a full context asks whether to
// reset or drop the oldest turns. Not the line editor (line_input.h) or the flags (options.h).
#pragma once

#include <shardlm.h>

#include <string>

#include "line_input.h"
#include "options.h"

namespace shardlm_chat {

class Repl {
 public:
  explicit Repl(ChatOptions options);
  ~Repl();
  Repl(const Repl&) = delete;
  Repl& operator=(const Repl&) = delete;

  // Opens the model and runs until /quit or end of input. Returns the process exit code.
  int run();

 private:
  bool open();  // prints the error and returns false on failure
  void print_summary();
  // Returns false to quit.
  bool command(const std::string& line);
  void turn(const std::string& message);
  // Asks what to do about a full context; returns true when the message should be retried.
  bool on_context_full(bool message_pending);
  void print_stats();
  void print_help();
  void report(const char* what, shardlm_status status);

  ChatOptions options_;
  LineInput input_;
  shardlm_model* model_ = nullptr;
  shardlm_session* session_ = nullptr;
  shardlm_model_info info_{};
  shardlm_generate_params pack_defaults_{};
  shardlm_generate_result last_{};
  bool have_last_ = false;
  bool echo_ = false;  // echo input lines (stdin is not a terminal)
};

}  // namespace shardlm_chat
