// --draft / --spec-ngram / --spec-k / --spec-always for the apps.
#include "apps/common/spec_flags.h"

#include "runtime/core/status.h"
#include "runtime/engine/draft_proposer.h"

namespace shardlm::apps {

void add_spec_flags(boost::program_options::options_description& desc, SpecFlags& flags) {
  namespace po = boost::program_options;
  desc.add_options()("draft", po::value(&flags.draft),
                     "speculative decoding with this draft model's pack (same tokenizer, any TP)")(
      "spec-ngram", po::bool_switch(&flags.ngram),
      "speculative decoding by n-gram (prompt lookup) proposals, no draft model")(
      "spec-k", po::value(&flags.k)->default_value(0),
      "most tokens proposed per step (0: 4 with --draft, adaptive below it; 8 with --spec-ngram)")(
      "spec-ngram-min", po::value(&flags.ngram_min)->default_value(flags.ngram_min),
      "--spec-ngram: shortest suffix (tokens) matched earlier in the context")(
      "spec-ngram-max", po::value(&flags.ngram_max)->default_value(flags.ngram_max),
      "--spec-ngram: longest suffix matched (the longest match wins)")(
      "draft-threads", po::value(&flags.draft_threads)->default_value(0),
      "compute threads of the draft model (0: the target's)")(
      "spec-always", po::bool_switch(&flags.always),
      "speculate in every step; by default the engine measures its steps and decodes plainly "
      "where speculating is slower");
}

SpeculationOptions speculation_options(const SpecFlags& flags) {
  SpeculationOptions o;
  if (!flags.draft.empty() && flags.ngram) {
    fail(StatusCode::kInvalidArg, "give one of --draft and --spec-ngram, not both");
  }
  o.mode = !flags.draft.empty() ? SpeculationMode::kDraft
           : flags.ngram        ? SpeculationMode::kNgram
                                : SpeculationMode::kOff;
  o.k = flags.k != 0 ? flags.k : default_speculation_k(o.mode);
  if (flags.ngram_min < 1 || flags.ngram_max < flags.ngram_min) {
    fail(StatusCode::kInvalidArg, "--spec-ngram-min and --spec-ngram-max need 1 <= min <= max (got " +
                                      std::to_string(flags.ngram_min) + " and " +
                                      std::to_string(flags.ngram_max) + ")");
  }
  o.ngram_min = flags.ngram_min;
  o.ngram_max = flags.ngram_max;
  o.only_when_faster = !flags.always;
  validate_speculation_options(o);
  return o;
}

std::unique_ptr<Engine> open_draft(const SpecFlags& flags, const EngineOptions& target_options,
                                   const Engine& target) {
  if (flags.draft.empty()) return nullptr;
  EngineOptions o = draft_engine_options(target_options, target, flags.draft);
  if (flags.draft_threads > 0) o.n_threads = flags.draft_threads;
  return std::make_unique<Engine>(o);
}

std::string describe_speculation(const SpecFlags& flags, const Engine* draft) {
  const SpeculationOptions o = speculation_options(flags);
  const std::string k = ", k " + std::to_string(o.k) + (flags.always ? ", always" : "");
  if (draft) {
    return "draft " + flags.draft + " (tp " + std::to_string(draft->tp_size()) + ")" + k;
  }
  return flags.ngram ? "n-gram " + std::to_string(o.ngram_min) + "-" +
                           std::to_string(o.ngram_max) + k
                     : "off";
}

}  // namespace shardlm::apps
