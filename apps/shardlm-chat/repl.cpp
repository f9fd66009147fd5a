// Repl: model and session through shardlm.h, commands, streaming turns, context-full choice.
#include "repl.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace shardlm_chat {

namespace {

// What a SIGINT acts on. A signal handler can only reach process-wide state; these two are the
// only such variables: the session being generated on (set only during an answer), and a count
// of interrupts that arrived while reading a line (libedit then returns no line: not an EOF).
std::atomic<shardlm_session*> g_generating{nullptr};
std::atomic<int> g_interrupts{0};
static_assert(std::atomic<shardlm_session*>::is_always_lock_free);
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_sigint(int) {
  // shardlm_session_cancel is async-signal-safe (one atomic store).
  if (shardlm_session* s = g_generating.load()) {
    shardlm_session_cancel(s);
  } else {
    g_interrupts.fetch_add(1);
  }
}

int32_t stream_to_stdout(int32_t, const char* text, size_t len, void*) {
  if (len) {
    std::fwrite(text, 1, len, stdout);
    std::fflush(stdout);
  }
  return 0;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

const char* finish_name(int32_t reason) {
  switch (reason) {
    case SHARDLM_FINISH_STOP_TOKEN:
      return "end of turn";
    case SHARDLM_FINISH_STOP_STRING:
      return "stop string";
    case SHARDLM_FINISH_MAX_TOKENS:
      return "max tokens";
    case SHARDLM_FINISH_CONTEXT_FULL:
      return "context full";
    case SHARDLM_FINISH_CALLBACK:
      return "stopped";
    case SHARDLM_FINISH_CANCELLED:
      return "cancelled";
    default:
      return "none";
  }
}

double rate(double n, double seconds) {
  return seconds > 0 ? n / seconds : 0.0;
}

}  // namespace

Repl::Repl(ChatOptions options) : options_(std::move(options)) {
  echo_ = !input_.interactive();
}

Repl::~Repl() {
  shardlm_session_destroy(session_);
  shardlm_model_close(model_);
}

void Repl::report(const char* what, shardlm_status status) {
  std::fprintf(stderr, "shardlm-chat: %s: %s (%s)\n", what, shardlm_last_error(),
               shardlm_status_name(status));
}

bool Repl::open() {
  if (shardlm_abi_version() < SHARDLM_ABI_VERSION) {
    std::fprintf(stderr, "shardlm-chat: libshardlm ABI %u, this program needs %d or later\n",
                 shardlm_abi_version(), SHARDLM_ABI_VERSION);
    return false;
  }
  options_.model.backend = options_.backend.c_str();
  options_.engine.kv_dtype = options_.kv_dtype.c_str();
  options_.engine.activations = options_.activations.c_str();
  options_.engine.draft_pack = options_.draft.empty() ? nullptr : options_.draft.c_str();
  options_.engine.backend_settings = options_.backend_settings.c_str();
  // Started by mpirun: one rank per process; rank 0 chats (mpirun gives it stdin).
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(v) != nullptr) options_.engine.process_ranks = 1;
  }
  shardlm_status st = shardlm_model_open_with_engine(options_.pack_dir.c_str(), &options_.model,
                                                     &options_.engine, &model_);
  if (st != SHARDLM_OK) {
    report("cannot open the model", st);
    return false;
  }
  if (shardlm_model_rank(model_) != 0) return true;  // a worker rank: run() serves steps
  info_.struct_size = sizeof info_;
  pack_defaults_.struct_size = sizeof pack_defaults_;
  if ((st = shardlm_model_get_info(model_, &info_)) != SHARDLM_OK ||
      (st = shardlm_model_generation_defaults(model_, &pack_defaults_)) != SHARDLM_OK) {
    report("model info", st);
    return false;
  }
  if (!info_.has_tokenizer || !info_.has_chat_template) {
    std::fprintf(stderr,
                 "shardlm-chat: the pack in %s has no %s; chat needs both (pack a checkpoint "
                 "with tokenizer.json and a chat template)\n",
                 options_.pack_dir.c_str(), info_.has_tokenizer ? "chat template" : "tokenizer");
    return false;
  }
  shardlm_session_params sp = shardlm_session_default_params();
  sp.system_prompt = options_.system.c_str();
  sp.enable_thinking = options_.thinking;
  if ((st = shardlm_session_create(model_, &sp, &session_)) != SHARDLM_OK) {
    report("cannot create a session", st);
    return false;
  }
  return true;
}

void Repl::print_summary() {
  const double kib = 1024.0;
  std::printf("shardlm-chat %s (ABI %u)\n", shardlm_version(), shardlm_abi_version());
  std::printf("model     %s (%s), %s weights %.1f MiB, %d layers, n_embd %d, vocab %d\n",
              info_.family, info_.architecture, info_.weight_dtype,
              static_cast<double>(info_.weight_bytes) / (kib * kib), info_.n_layer, info_.n_embd,
              info_.n_vocab);
  std::printf("parallel  tp %d x %d threads, backend %s\n", info_.tp_size, info_.n_threads_per_rank,
              info_.backend);
  std::printf("context   %lld tokens (KV %.1f MiB for a full one)%s\n",
              static_cast<long long>(info_.n_ctx),
              static_cast<double>(info_.kv_bytes_per_session) / (kib * kib),
              info_.has_thinking_switch ? (options_.thinking < 0   ? ", thinking: template default"
                                           : options_.thinking > 0 ? ", thinking: on"
                                                                   : ", thinking: off")
                                        : "");
  std::printf("sampling  temp %g, top_k %d, top_p %g, min_p %g, repeat %g (pack defaults",
              pack_defaults_.temperature, pack_defaults_.top_k, pack_defaults_.top_p,
              pack_defaults_.min_p, pack_defaults_.repetition_penalty);
  std::printf("%s)\n", pack_defaults_.temperature == 0 ? ": greedy" : "");
  size_t len = 0;
  if (shardlm_model_memory_plan(model_, 0, nullptr, 0, &len) == SHARDLM_OK) {
    std::vector<char> plan(len + 1);
    if (shardlm_model_memory_plan(model_, 0, plan.data(), plan.size(), &len) == SHARDLM_OK) {
      std::fputs(plan.data(), stdout);
    }
  }
  std::printf("Type /help for commands. Ctrl-C stops an answer, Ctrl-D exits.\n");
  std::fflush(stdout);
}

void Repl::print_help() {
  std::printf(
      "  TEXT                 send a message (end a line with \\ to continue it)\n"
      "  /system TEXT         set the system message (/system alone removes it)\n"
      "  /reset               start a new conversation (keeps the system message)\n"
      "  /truncate [N]        drop the N oldest turns (default 1)\n"
      "  /set NAME VALUE      change a sampling setting; /set alone lists them\n"
      "                       (%s)\n"
      "  /think on|off|default  Qwen3 enable_thinking\n"
      "  /stats               tokens/s of the last turn, time to first token, context use,\n"
      "                       KV blocks and prefix-cache reuse\n"
      "  /help                this help\n"
      "  /quit                exit (also Ctrl-D)\n",
      knob_names().c_str());
}

void Repl::print_stats() {
  shardlm_session_info si;
  si.struct_size = sizeof si;
  if (shardlm_session_get_info(session_, &si) != SHARDLM_OK) return;
  if (have_last_) {
    const shardlm_generate_result& r = last_;
    std::printf(
        "prompt:   %lld tokens (%lld reused from the KV cache, %lld computed) in %.3f s "
        "= %.1f tok/s\n",
        static_cast<long long>(r.n_prompt), static_cast<long long>(r.n_reused),
        static_cast<long long>(r.n_prefilled), r.prefill_seconds,
        rate(static_cast<double>(r.n_prefilled), r.prefill_seconds));
    std::printf("first token after %.3f s (TTFT)\n", r.ttft_seconds);
    std::printf("generate: %d tokens, %lld decode steps in %.3f s = %.1f tok/s (%s)\n",
                r.n_generated, static_cast<long long>(r.n_decode_steps), r.decode_seconds,
                rate(static_cast<double>(r.n_decode_steps), r.decode_seconds),
                finish_name(r.finish_reason));
  } else {
    std::printf("no turn yet\n");
  }
  std::printf("context:  %lld of %lld tokens, turns: %d\n", static_cast<long long>(si.n_ctx_used),
              static_cast<long long>(si.n_ctx), si.n_turns);
  shardlm_engine_stats es;
  es.struct_size = sizeof es;
  if (shardlm_model_get_stats(model_, &es) == SHARDLM_OK) {
    std::printf(
        "kv cache: %lld of %lld blocks of %d tokens held, %lld cached; prefix cache served "
        "%lld of %lld prompt tokens (%.1f%%); %lld steps, up to %lld sequences in one\n",
        static_cast<long long>(es.n_blocks_used), static_cast<long long>(es.n_blocks),
        es.block_size, static_cast<long long>(es.n_blocks_cached),
        static_cast<long long>(es.prefix_hit_tokens),
        static_cast<long long>(es.prefix_queried_tokens),
        es.prefix_queried_tokens ? 100.0 * static_cast<double>(es.prefix_hit_tokens) /
                                       static_cast<double>(es.prefix_queried_tokens)
                                 : 0.0,
        static_cast<long long>(es.n_steps), static_cast<long long>(es.max_seqs_in_a_step));
    if (es.spec_verifications > 0) {
      std::printf(
          "speculation: %lld of %lld proposed tokens accepted (%.1f%%), %.2f tokens per "
          "verification (mean accepted length %.2f), %lld draft steps\n",
          static_cast<long long>(es.spec_accepted), static_cast<long long>(es.spec_proposed),
          es.spec_proposed ? 100.0 * static_cast<double>(es.spec_accepted) /
                                 static_cast<double>(es.spec_proposed)
                           : 0.0,
          static_cast<double>(es.spec_emitted) / static_cast<double>(es.spec_verifications),
          static_cast<double>(es.spec_accepted) / static_cast<double>(es.spec_verifications),
          static_cast<long long>(es.draft_steps));
    }
  }
}

bool Repl::on_context_full(bool message_pending) {
  shardlm_session_info si;
  si.struct_size = sizeof si;
  shardlm_session_get_info(session_, &si);
  for (;;) {
    std::printf(
        "Context full (%lld of %lld tokens). [r]eset the conversation, [t]runcate the "
        "oldest turns, or [k]eep it as is? ",
        static_cast<long long>(si.n_ctx_used), static_cast<long long>(si.n_ctx));
    std::fflush(stdout);
    const std::optional<std::string> answer = input_.read("");
    if (echo_ && answer) std::printf("%s\n", answer->c_str());
    const std::string a = answer ? trim(*answer) : "k";
    if (a == "r" || a == "reset" || a == "/reset") {
      shardlm_session_reset(session_);
      std::printf("[conversation reset]\n");
      return message_pending;
    }
    if (a == "t" || a == "truncate") {
      // Drop half of the turns (at least one) so the next turns have room again.
      const int32_t drop = si.n_turns > 1 ? si.n_turns / 2 : 1;
      int32_t dropped = 0;
      shardlm_session_truncate(session_, drop, &dropped);
      if (dropped > 0) {
        std::printf("[dropped the %d oldest turn%s]\n", dropped, dropped == 1 ? "" : "s");
      } else if (!message_pending) {
        std::printf("[no turns left to drop]\n");
      }
      if (dropped == 0 && message_pending) {
        std::printf(
            "[the message alone does not fit in %lld tokens: shorten it, or restart with "
            "a larger --n-ctx]\n",
            static_cast<long long>(si.n_ctx));
        return false;
      }
      return message_pending;
    }
    if (a == "k" || a == "keep" || a.empty()) {
      if (message_pending) std::printf("[message not sent]\n");
      return false;
    }
    std::printf("[please answer r, t or k]\n");
  }
}

void Repl::turn(const std::string& message) {
  std::vector<const char*> stops;
  for (const std::string& s : options_.stop_strings) stops.push_back(s.c_str());
  shardlm_generate_params p = options_.gen;
  p.stop_strings = stops.data();
  p.n_stop_strings = stops.size();
  for (int attempt = 0; attempt < 64; ++attempt) {
    shardlm_generate_result r;
    r.struct_size = sizeof r;
    g_generating.store(session_);
    const shardlm_status st =
        shardlm_session_chat(session_, message.c_str(), &p, stream_to_stdout, nullptr, &r);
    g_generating.store(nullptr);
    if (st == SHARDLM_OK || st == SHARDLM_ERR_CANCELLED) {
      last_ = r;
      have_last_ = true;
      std::printf(st == SHARDLM_ERR_CANCELLED ? " [stopped]\n" : "\n");
      if (r.finish_reason == SHARDLM_FINISH_CONTEXT_FULL) {
        std::printf("[the answer was cut: the context is full]\n");
        on_context_full(false);
      }
      return;
    }
    if (st == SHARDLM_ERR_KV_FULL) {
      std::printf("[%s]\n", shardlm_last_error());
      if (on_context_full(true)) continue;
      return;
    }
    std::printf("error: %s (%s)\n", shardlm_last_error(), shardlm_status_name(st));
    return;
  }
}

bool Repl::command(const std::string& line) {
  const size_t sp = line.find(' ');
  const std::string cmd = line.substr(0, sp);
  const std::string arg = sp == std::string::npos ? "" : trim(line.substr(sp + 1));
  if (cmd == "/quit" || cmd == "/exit" || cmd == "/q") return false;
  if (cmd == "/help" || cmd == "/?") {
    print_help();
  } else if (cmd == "/reset") {
    shardlm_session_reset(session_);
    have_last_ = false;
    std::printf("[conversation reset]\n");
  } else if (cmd == "/system") {
    shardlm_session_set_system(session_, arg.c_str());
    std::printf(arg.empty() ? "[system message removed]\n" : "[system message set]\n");
  } else if (cmd == "/truncate") {
    int n = 1;
    if (!arg.empty()) n = std::atoi(arg.c_str());
    int32_t dropped = 0;
    const shardlm_status st = shardlm_session_truncate(session_, n, &dropped);
    if (st != SHARDLM_OK) {
      std::printf("error: %s\n", shardlm_last_error());
    } else {
      std::printf("[dropped %d turn%s]\n", dropped, dropped == 1 ? "" : "s");
    }
  } else if (cmd == "/set") {
    if (arg.empty()) {
      std::fputs(describe_knobs(options_.gen, pack_defaults_).c_str(), stdout);
    } else {
      const size_t s2 = arg.find(' ');
      if (s2 == std::string::npos) {
        std::printf("usage: /set NAME VALUE (settings: %s)\n", knob_names().c_str());
      } else {
        const std::string err = set_knob(options_.gen, arg.substr(0, s2), trim(arg.substr(s2)));
        if (err.empty()) {
          std::printf("[%s = %s]\n", arg.substr(0, s2).c_str(), trim(arg.substr(s2)).c_str());
        } else {
          std::printf("error: %s\n", err.c_str());
        }
      }
    }
  } else if (cmd == "/think") {
    const int32_t v = arg == "on" ? 1 : arg == "off" ? 0 : arg == "default" ? -1 : -2;
    if (v == -2) {
      std::printf("usage: /think on|off|default\n");
    } else {
      shardlm_session_set_thinking(session_, v);
      std::printf("[thinking %s]\n", arg.c_str());
    }
  } else if (cmd == "/stats") {
    print_stats();
  } else {
    std::printf("unknown command %s (/help lists them)\n", cmd.c_str());
  }
  return true;
}

int Repl::run() {
  if (!open()) return 2;
  if (shardlm_model_rank(model_) != 0) {  // a worker rank: serve rank 0's steps, then leave
    const shardlm_status st = shardlm_model_serve(model_);
    if (st != SHARDLM_OK) report("serving rank 0's steps", st);
    return st == SHARDLM_OK ? 0 : 2;
  }
  if (options_.plan_json) {
    size_t len = 0;
    shardlm_model_memory_plan(model_, 1, nullptr, 0, &len);
    std::vector<char> plan(len + 1);
    if (shardlm_model_memory_plan(model_, 1, plan.data(), plan.size(), &len) != SHARDLM_OK) {
      report("memory plan", SHARDLM_ERR_INTERNAL);
      return 2;
    }
    std::printf("%s\n", plan.data());
    return 0;
  }
  if (!options_.quiet) print_summary();

  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  for (;;) {
    const int interrupts = g_interrupts.load();
    const std::optional<std::string> line = input_.read("> ");
    if (!line) {
      if (g_interrupts.load() != interrupts) {  // Ctrl-C at the prompt: drop the line
        std::printf("^C (Ctrl-D or /quit exits)\n");
        continue;
      }
      if (input_.interactive()) std::printf("\n");
      break;
    }
    if (echo_) std::printf("> %s\n", line->c_str());
    const std::string text = trim(*line);
    if (text.empty()) continue;
    if (text[0] == '/') {
      if (!command(text)) break;
    } else {
      turn(*line);
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace shardlm_chat
