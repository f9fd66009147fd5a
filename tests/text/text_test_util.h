// Helpers shared by the text tests: file reading and cached tokenizers for the shared test data.
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "runtime/text/tokenizer.h"

namespace shardlm::text::testing {

inline std::string testdata(const std::string& rel) {
  return std::string(SHARDLM_TESTDATA_DIR) + "/tokenizer/" + rel;
}
inline std::string fixture(const std::string& rel) {
  return std::string(SHARDLM_FIXTURES_DIR) + "/text/" + rel;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Named tokenizers over the shared test data, loaded once per process:
//   "qwen3"      qwen3/tokenizer.json + qwen3/tokenizer_config.json
//   "qwen2.5"    qwen2.5/vocab.json + merges.txt + tokenizer_config.json
//   "llama2"     llama2/tokenizer.json + llama2/tokenizer_config.json
//   "tinyllama"  llama2/tokenizer.json + tinyllama/tokenizer_config.json, whose
//                added_tokens_decoder flags (normalized=false) replace the tokenizer.json ones
//   "mistral"    mistral/tokenizer.json + mistral/tokenizer_config.json
inline const Tokenizer& named_tokenizer(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  Tokenizer t = [&]() {
    if (name == "qwen3")
      return Tokenizer::from_json(slurp(testdata("qwen3/tokenizer.json")),
                                  slurp(testdata("qwen3/tokenizer_config.json")));
    if (name == "qwen2.5")
      return Tokenizer::from_vocab_merges(slurp(testdata("qwen2.5/vocab.json")),
                                          slurp(testdata("qwen2.5/merges.txt")),
                                          slurp(testdata("qwen2.5/tokenizer_config.json")));
    if (name == "llama2")
      return Tokenizer::from_json(slurp(testdata("llama2/tokenizer.json")),
                                  slurp(testdata("llama2/tokenizer_config.json")));
    if (name == "tinyllama")
      return Tokenizer::from_json(slurp(testdata("llama2/tokenizer.json")),
                                  slurp(testdata("tinyllama/tokenizer_config.json")),
                                  TokenizerOptions{.config_overrides_added_tokens = true});
    if (name == "mistral")
      return Tokenizer::from_json(slurp(testdata("mistral/tokenizer.json")),
                                  slurp(testdata("mistral/tokenizer_config.json")));
    throw std::runtime_error("unknown tokenizer " + name);
  }();
  return cache.emplace(name, std::move(t)).first->second;
}

}  // namespace shardlm::text::testing
