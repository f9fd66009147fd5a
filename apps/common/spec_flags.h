// The speculative-decoding flags shardlm-run, shardlm-bench and shardlm-serve take (--draft PACK,
// --spec-ngram, --spec-k K, --spec-ngram-min/--spec-ngram-max N, --spec-always): registered on a program_options description, turned into
// SpeculationOptions, and the draft model opened beside the target (draft_engine_options: same
// backend, threads, context and KV settings; its ranks are threads of this process). Not the other
// flags.
#pragma once

#include <boost/program_options.hpp>

#include <memory>
#include <string>

#include "runtime/engine/engine.h"
#include "runtime/engine/speculation.h"

namespace shardlm::apps {

struct SpecFlags {
  std::string draft;  // draft pack directory
  bool ngram = false;
  int k = 0;  // 0: default_speculation_k (4 with a draft, 8 with n-gram)
  int ngram_min = SpeculationOptions{}.ngram_min;  // n-gram lookup: suffix lengths matched
  int ngram_max = SpeculationOptions{}.ngram_max;
  int draft_threads = 0;  // 0: the target's
  bool always = false;    // --spec-always: speculate even in steps where it measured slower
};

void add_spec_flags(boost::program_options::options_description& desc, SpecFlags& flags);
// Throws Error(kInvalidArg) when both --draft and --spec-ngram are given or k is out of range.
SpeculationOptions speculation_options(const SpecFlags& flags);
// The draft engine for --draft (nullptr without it).
std::unique_ptr<Engine> open_draft(const SpecFlags& flags, const EngineOptions& target_options,
                                   const Engine& target);
// "draft <dir> (tp N), k 4" / "n-gram 2-5, k 8" / "off" (the settings in use).
std::string describe_speculation(const SpecFlags& flags, const Engine* draft);

}  // namespace shardlm::apps
