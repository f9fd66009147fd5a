// --spec-prompts: plain vs speculative decoding, interleaved, same prompts and seeds.
#include "apps/shardlm-bench/speculation_bench.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/common/prompt_input.h"
#include "runtime/core/status.h"
#include "runtime/engine/generate.h"
#include "runtime/engine/step_engine.h"

namespace shardlm::bench {

namespace {

std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail(StatusCode::kIo, "--spec-prompts: cannot read " + path);
  std::vector<std::string> out;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail(StatusCode::kInvalidArg, path + ":" + std::to_string(n) + ": not JSON: " + e.what());
    }
    if (j.is_object() && j.contains("prompt") && j["prompt"].is_string()) {
      out.push_back(j["prompt"].get<std::string>());
    } else if (j.is_string()) {
      out.push_back(j.get<std::string>());
    } else {
      fail(StatusCode::kInvalidArg,
           path + ":" + std::to_string(n) + ": expected a JSON string or {\"prompt\": \"...\"}");
    }
  }
  if (out.empty()) fail(StatusCode::kInvalidArg, "--spec-prompts: " + path + " has no prompts");
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

void run_speculation_bench(Engine& target, Engine* draft, const SpeculationBenchOptions& o) {
  const SpeculationOptions spec = apps::speculation_options(o.spec);
  if (spec.mode == SpeculationMode::kOff) {
    fail(StatusCode::kInvalidArg, "--spec-prompts needs --draft PACK or --spec-ngram");
  }
  if (o.reps < 1 || o.gen < 2) fail(StatusCode::kInvalidArg, "--reps >= 1 and --gen >= 2");
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string& text : read_prompts(o.prompts_path)) {
    prompts.push_back(encode_prompt(target.pack(0), text, true));
  }
  std::vector<double> plain_rate, spec_rate;
  int64_t proposed = 0, accepted = 0, verifications = 0, mismatches = 0;
  int64_t kept_plain = 0, spec_steps = 0;  // SpecGate's plain steps, of all steps (first rep)
  // Each rep runs every prompt plainly on one step engine, then speculatively on another, one
  // prompt after another: the speculative engine carries what it learned about the proposer from
  // one prompt to the next (speculation.h), as a server or a chat session does.
  StepEngineOptions plain_options;
  plain_options.max_seqs = 1;
  plain_options.prefix_cache = false;
  StepEngineOptions spec_options = plain_options;
  spec_options.speculation = spec;
  for (int rep = 0; rep < o.reps; ++rep) {
    double plain_s = 0, spec_s = 0;
    int64_t plain_tokens = 0, spec_tokens = 0;
    std::vector<std::vector<int32_t>> plain_out(prompts.size());
    const auto options_for = [&](size_t i) {
      GenerateOptions go;
      go.max_new_tokens = o.gen;
      go.ignore_eos = true;
      go.temperature = o.temperature;
      go.seed = 1000 + i;
      return go;
    };
    {
      StepEngine se(target, plain_options);
      for (size_t i = 0; i < prompts.size(); ++i) {
        GenerateResult a = generate_on(se, prompts[i], options_for(i));
        plain_s += a.decode_seconds;
        plain_tokens += a.n_decode_steps;
        plain_out[i] = std::move(a.tokens);
      }
    }
    {
      StepEngine se(target, spec_options, draft);
      for (size_t i = 0; i < prompts.size(); ++i) {
        const GenerateResult b = generate_on(se, prompts[i], options_for(i));
        spec_s += b.decode_seconds;
        spec_tokens += b.n_decode_steps;
        if (o.temperature == 0 && plain_out[i] != b.tokens) ++mismatches;
        if (rep == 0) {
          proposed += b.spec_proposed;
          accepted += b.spec_accepted;
          verifications += b.spec_verifications;
        }
      }
      if (rep == 0) {
        kept_plain = se.stats().spec_plain_steps_chosen;
        spec_steps = se.stats().n_steps;
      }
    }
    plain_rate.push_back(static_cast<double>(plain_tokens) / plain_s);
    spec_rate.push_back(static_cast<double>(spec_tokens) / spec_s);
  }
  const double a = median(plain_rate), b = median(spec_rate);
  const double acceptance = proposed ? double(accepted) / double(proposed) : 0;
  const double per_verification =
      verifications ? double(accepted + verifications) / double(verifications) : 0;
  const std::string what = apps::describe_speculation(o.spec, draft);
  if (o.json) {
    nlohmann::json j = {{"speculation", what},
                        {"prompts", prompts.size()},
                        {"gen", o.gen},
                        {"reps", o.reps},
                        {"temperature", o.temperature},
                        {"plain_decode_tok_s", a},
                        {"spec_decode_tok_s", b},
                        {"speedup", b / a},
                        {"acceptance_rate", acceptance},
                        {"tokens_per_verification", per_verification},
                        {"greedy_mismatches", mismatches},
                        {"steps_kept_plain", kept_plain},
                        {"spec_engine_steps", spec_steps},
                        {"plain_decode_tok_s_reps", plain_rate},
                        {"spec_decode_tok_s_reps", spec_rate}};
    std::cout << j.dump(1) << "\n";
    return;
  }
  std::printf("speculation        %s\n", what.c_str());
  std::printf(
      "prompts            %zu from %s, %lld tokens each, temperature %.2f, %d reps (A/B "
      "interleaved)\n",
      prompts.size(), o.prompts_path.c_str(), static_cast<long long>(o.gen), o.temperature, o.reps);
  std::printf("decode plain       %.2f tok/s (median)\n", a);
  std::printf("decode speculative %.2f tok/s (median)   speedup %.2fx\n", b, b / a);
  std::printf("acceptance         %.1f%% of %lld proposed, %.2f tokens per verification\n",
              100 * acceptance, static_cast<long long>(proposed), per_verification);
  std::printf(
      "kept plain         %lld of %lld steps of the first rep (speculating measured slower)\n",
      static_cast<long long>(kept_plain), static_cast<long long>(spec_steps));
  if (o.temperature == 0) {
    // Without --deterministic a verification row may differ from the one-token row in the last
    // bits (a GEMM instead of a GEMV), which can flip an argmax at an exact near-tie.
    std::printf("greedy outputs     %lld of %lld differ from plain decoding%s\n",
                static_cast<long long>(mismatches),
                static_cast<long long>(prompts.size() * static_cast<size_t>(o.reps)),
                mismatches ? " (near-ties; --deterministic makes them identical)" : "");
  }
}

}  // namespace shardlm::bench
