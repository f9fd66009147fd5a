// Command-line parsing and the sampling-knob table.
#include "options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <stdexcept>

namespace shardlm_chat {

namespace {

struct Knob {
  const char* name;
  const char* alias;  // or nullptr
  const char* help;
  std::function<std::string(shardlm_generate_params&, const std::string&)> set;  // "" = ok
  std::function<std::string(const shardlm_generate_params&, const shardlm_generate_params&)> show;
};

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// A float knob whose negative value means "the pack's default".
Knob float_knob(const char* name, const char* alias, const char* help,
                float shardlm_generate_params::*field, bool has_default) {
  Knob k{name, alias, help, {}, {}};
  k.set = [field, has_default, name](shardlm_generate_params& p, const std::string& v) {
    if (v == "default") {
      p.*field = has_default ? static_cast<float>(SHARDLM_DEFAULT) : 0.0f;
      return std::string();
    }
    const auto x = parse_number(v);
    if (!x) return std::string(name) + ": '" + v + "' is not a number";
    if (*x < 0 && has_default) return std::string(name) + " must be >= 0";
    p.*field = static_cast<float>(*x);
    return std::string();
  };
  k.show = [field, has_default](const shardlm_generate_params& p,
                                const shardlm_generate_params& d) {
    if (has_default && p.*field < 0) return fmt(d.*field) + " (pack default)";
    return fmt(p.*field);
  };
  return k;
}

Knob int_knob(const char* name, const char* alias, const char* help,
              int32_t shardlm_generate_params::*field, bool has_default, int32_t min_value) {
  Knob k{name, alias, help, {}, {}};
  k.set = [=](shardlm_generate_params& p, const std::string& v) {
    if (v == "default") {
      p.*field = has_default ? SHARDLM_DEFAULT : shardlm_generate_default_params().*field;
      return std::string();
    }
    const auto x = parse_number(v);
    if (!x || *x != std::floor(*x) || *x < min_value || *x > 2147483647.0) {
      return std::string(name) + ": '" + v + "' is not an integer >= " + std::to_string(min_value);
    }
    p.*field = static_cast<int32_t>(*x);
    return std::string();
  };
  k.show = [=](const shardlm_generate_params& p, const shardlm_generate_params& d) {
    if (has_default && p.*field < 0) return std::to_string(d.*field) + " (pack default)";
    return std::to_string(p.*field);
  };
  return k;
}

std::vector<Knob> knobs() {
  using P = shardlm_generate_params;
  std::vector<Knob> k;
  k.push_back(float_knob("temp", "temperature", "0 = greedy", &P::temperature, true));
  k.push_back(int_knob("top_k", nullptr, "0 = off", &P::top_k, true, 0));
  k.push_back(float_knob("top_p", nullptr, "1 = off", &P::top_p, true));
  k.push_back(float_knob("min_p", nullptr, "0 = off", &P::min_p, true));
  k.push_back(
      float_knob("repeat_penalty", "repetition_penalty", "1 = off", &P::repetition_penalty, true));
  k.push_back(float_knob("presence_penalty", nullptr, "0 = off", &P::presence_penalty, false));
  k.push_back(float_knob("frequency_penalty", nullptr, "0 = off", &P::frequency_penalty, false));
  k.push_back(
      int_knob("penalty_last_n", nullptr, "-1 = whole context", &P::penalty_last_n, false, -1));
  k.push_back(int_knob("max_tokens", nullptr, "-1 = until a stop", &P::max_tokens, false, -1));
  Knob seed{"seed", nullptr, "'random' = a new seed each turn", {}, {}};
  seed.set = [](P& p, const std::string& v) {
    if (v == "random" || v == "default") {
      p.seed = SHARDLM_SEED_RANDOM;
      return std::string();
    }
    char* end = nullptr;
    errno = 0;
    const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v[0] == '-' || errno || end != v.c_str() + v.size())
      return "seed: '" + v + "' is not a non-negative integer (or 'random')";
    p.seed = x;
    return std::string();
  };
  seed.show = [](const P& p, const P&) {
    return p.seed == SHARDLM_SEED_RANDOM ? std::string("random") : std::to_string(p.seed);
  };
  k.push_back(seed);
  return k;
}

std::string normalize(std::string s) {
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

[[noreturn]] void bad_arg(const std::string& message) {
  throw std::runtime_error(message + " (see --help)");
}

}  // namespace

std::string set_knob(shardlm_generate_params& p, const std::string& name,
                     const std::string& value) {
  const std::string n = normalize(name);
  for (Knob& k : knobs()) {
    if (n == k.name || (k.alias && n == k.alias)) {
      std::string err = k.set(p, value);
      // Name the setting the way the user wrote it (--top-p, /set top-p).
      if (!err.empty() && err.rfind(k.name, 0) == 0) err = name + err.substr(std::strlen(k.name));
      return err;
    }
  }
  return "unknown setting '" + name + "' (settings: " + knob_names() + ")";
}

std::string describe_knobs(const shardlm_generate_params& p, const shardlm_generate_params& d) {
  std::ostringstream o;
  for (Knob& k : knobs()) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-18s %-24s %s\n", k.name, k.show(p, d).c_str(), k.help);
    o << line;
  }
  return o.str();
}

std::string knob_names() {
  std::string s;
  for (Knob& k : knobs()) s += (s.empty() ? "" : ", ") + std::string(k.name);
  return s;
}

std::string usage() {
  return "usage: shardlm-chat --pack DIR [options]\n"
         "\n"
         "model:\n"
         "  --pack DIR              pack directory (rank-<r>-of-<N>.shardlm files)\n"
         "  --backend NAME          compute backend (default cpu)\n"
         "  --threads N             compute threads over all ranks (default: all cores)\n"
         "  --tp N                  expected tensor-parallel size (default: the pack's)\n"
         "  --n-ctx N               context length in tokens (default: min(model's, 4096));\n"
         "                          --max-seq is the same flag\n"
         "  --mem-fraction F        memory-plan fraction of the device (default: the pack's)\n"
         "  --kv-dtype T            KV cache element type: bf16 (default), f16, f32, f8e4m3\n"
         "  --kv-cache-tokens N     KV pool over all sequences (default: from the memory plan)\n"
         "  --block-size N          tokens per KV block (default 16)\n"
         "  --max-seqs N            sequences per forward step (default 16)\n"
         "  --no-prefix-cache       do not reuse the KV of identical prompt prefixes\n"
         "  --deterministic         cpu: bit-identical logits whatever the batch (slower prefill)\n"
         "  --activations A         matmuls with bf16 weights: auto (default: bf16 where the CPU\n"
         "                          multiplies bf16 natively, else f32), f32 (exact) or bf16\n"
         "                          (rounded to bf16 as PyTorch does)\n"
         "  --backend-settings S    backend-specific key=value,... (cpu: isa=avx2; cuda: graphs=1)\n"
         "  --draft DIR             speculative decoding with this draft model's pack (same\n"
         "                          tokenizer; /stats shows the acceptance rate)\n"
         "  --spec-ngram            speculative decoding by n-gram (prompt lookup) proposals\n"
         "  --spec-k K              most tokens proposed per step (default 4; 8 with n-gram)\n"
         "  --plan-json             print the memory plan as JSON and exit\n"
         "conversation:\n"
         "  --system TEXT           system message\n"
         "  --think / --no-think    Qwen3 templates: enable_thinking on / off\n"
         "  --stop TEXT             stop string (repeatable)\n"
         "sampling (default: the pack's generation_config.json):\n"
         "  --temp F  --top-k N  --top-p F  --min-p F  --repeat-penalty F\n"
         "  --presence-penalty F  --frequency-penalty F  --penalty-last-n N\n"
         "  --seed N  --max-tokens N (default 256; -1 = until a stop)\n"
         "other:\n"
         "  -q, --quiet             no start-up summary\n"
         "  -h, --help              this help\n"
         "\n"
         "Reads lines from stdin (line editing and history on a terminal); type /help inside.\n";
}

std::optional<ChatOptions> parse_args(int argc, char** argv) {
  ChatOptions o;
  auto value = [&](int& i, const std::string& flag) -> std::string {
    if (i + 1 >= argc) bad_arg(flag + " needs a value");
    return argv[++i];
  };
  auto integer = [&](int& i, const std::string& flag, long long lo) -> long long {
    const std::string v = value(i, flag);
    const auto x = parse_number(v);
    if (!x || *x != std::floor(*x) || *x < static_cast<double>(lo))
      bad_arg(flag + ": '" + v + "' is not an integer >= " + std::to_string(lo));
    return static_cast<long long>(*x);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(usage().c_str(), stdout);
      return std::nullopt;
    } else if (a == "--pack") {
      o.pack_dir = value(i, a);
    } else if (a == "--backend") {
      o.backend = value(i, a);
    } else if (a == "--threads") {
      o.model.n_threads = static_cast<int32_t>(integer(i, a, 0));
    } else if (a == "--tp") {
      o.model.tp = static_cast<int32_t>(integer(i, a, 0));
    } else if (a == "--n-ctx" || a == "--max-seq") {
      o.model.max_seq = integer(i, a, 1);
    } else if (a == "--mem-fraction") {
      const std::string v = value(i, a);
      const auto x = parse_number(v);
      if (!x || *x <= 0 || *x > 1) bad_arg("--mem-fraction: '" + v + "' is not in (0, 1]");
      o.model.mem_fraction = static_cast<float>(*x);
    } else if (a == "--kv-dtype") {
      o.kv_dtype = value(i, a);
    } else if (a == "--kv-cache-tokens") {
      o.engine.kv_cache_tokens = integer(i, a, 1);
    } else if (a == "--block-size") {
      o.engine.block_size = static_cast<int32_t>(integer(i, a, 1));
    } else if (a == "--max-seqs") {
      o.engine.max_seqs = static_cast<int32_t>(integer(i, a, 1));
    } else if (a == "--no-prefix-cache") {
      o.engine.prefix_cache = 0;
    } else if (a == "--deterministic") {
      o.engine.deterministic = 1;
    } else if (a == "--activations") {
      o.activations = value(i, a);
    } else if (a == "--backend-settings") {
      o.backend_settings = value(i, a);
    } else if (a == "--draft") {
      o.draft = value(i, a);
    } else if (a == "--spec-ngram") {
      o.engine.spec_ngram = 1;
    } else if (a == "--spec-k") {
      o.engine.spec_k = static_cast<int32_t>(integer(i, a, 1));
    } else if (a == "--plan-json") {
      o.plan_json = true;
    } else if (a == "--system") {
      o.system = value(i, a);
    } else if (a == "--think") {
      o.thinking = 1;
    } else if (a == "--no-think") {
      o.thinking = 0;
    } else if (a == "--stop") {
      o.stop_strings.push_back(value(i, a));
    } else if (a == "-q" || a == "--quiet") {
      o.quiet = true;
    } else if (a.rfind("--", 0) == 0) {
      const std::string name = a.substr(2);
      if (name == "max-tokens" || name == "seed" || name == "temp" || name == "temperature" ||
          name == "top-k" || name == "top-p" || name == "min-p" || name == "repeat-penalty" ||
          name == "presence-penalty" || name == "frequency-penalty" || name == "penalty-last-n") {
        const std::string err = set_knob(o.gen, name, value(i, a));
        if (!err.empty()) bad_arg("--" + err);
      } else {
        bad_arg("unknown option " + a);
      }
    } else {
      bad_arg("unexpected argument '" + a + "'");
    }
  }
  if (o.pack_dir.empty()) bad_arg("--pack DIR is required");
  return o;
}

}  // namespace shardlm_chat
