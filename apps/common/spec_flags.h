// The speculative-decoding flags shardlm-run and shardlm-bench take (--draft PACK, --spec-ngram,
// --spec-k K, --spec-always): registered on a program_options description, turned into
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
  int draft_threads = 0;  // 0: the target's
  bool always = false;    // --spec-always: speculate even in steps where it measured slower
};

void add_spec_flags(boost::program_options::options_description& desc, SpecFlags& flags);
// Throws Error(kInvalidArg) when both --draft and --spec-ngram are given or k is out of range.
SpeculationOptions speculation_options(const SpecFlags& flags);
// The draft engine for --draft (nullptr without it).
std::unique_ptr<Engine> open_draft(const SpecFlags& flags, const EngineOptions& target_options,
                                   const Engine& target);
// "draft <dir> (tp N), k 4" / "n-gram, k 8" / "off" (the k in use).
std::string describe_speculation(const SpecFlags& flags, const Engine* draft);

}  // namespace shardlm::apps
