// shardlm-chat's command line and its sampling knobs: one table of knobs serves both the
// command-line flags (--temp 0.7) and the REPL's /set command (/set temp 0.7). Only shardlm.h
// types. Not the REPL loop (repl.h).
#pragma once

#include <shardlm.h>

#include <optional>
#include <string>
#include <vector>

namespace shardlm_chat {

struct ChatOptions {
  std::string pack_dir;
  std::string backend = "cpu";
  shardlm_model_params model = shardlm_model_default_params();  // backend points into `backend`
  std::string kv_dtype = "bf16";
  std::string activations = "auto", backend_settings;
  std::string draft;  // --draft: the draft model's pack directory
  // kv_dtype, activations and backend_settings point into the strings above (set at open)
  shardlm_engine_params engine = shardlm_engine_default_params();
  shardlm_generate_params gen = shardlm_generate_default_params();
  std::vector<std::string> stop_strings;
  std::string system;
  int32_t thinking = -1;   // --think 1, --no-think 0, else the template's default
  bool plan_json = false;  // print the memory plan as JSON and exit
  bool quiet = false;      // no banner
};

// Parses argv. Returns nullopt after printing the help (--help). Throws std::runtime_error with
// a message naming the flag on bad input.
std::optional<ChatOptions> parse_args(int argc, char** argv);
std::string usage();

// Sets knob `name` (temp, top_k, top_p, min_p, repeat_penalty, presence_penalty,
// frequency_penalty, penalty_last_n, seed, max_tokens; '-' and '_' both accepted) from `value`.
// Returns "" on success, else what is wrong. "default" restores the pack's default.
std::string set_knob(shardlm_generate_params& p, const std::string& name, const std::string& value);
// One line per knob: the value in use (resolved against the pack's defaults) and its source.
std::string describe_knobs(const shardlm_generate_params& p,
                           const shardlm_generate_params& pack_defaults);
// Names of the knobs, for /help.
std::string knob_names();

}  // namespace shardlm_chat
