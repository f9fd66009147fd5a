// make_prompts() of prompt_words.h: splitmix64 per request (portable, unlike the standard
// distributions), 64 words so `next() % 64` has no bias. Not a tokenizer.
#include "apps/shardlm-serve-bench/prompt_words.h"

#include <array>
#include <stdexcept>
#include <string_view>
#include <unordered_set>

namespace shardlm::serve_bench {
namespace {

constexpr std::array<std::string_view, 64> kWords = {
    "river",   "stone",   "garden",  "window",  "market",  "yellow", "quiet",   "forest",
    "silver",  "morning", "bridge",  "candle",  "letter",  "orange", "winter",  "harbor",
    "ladder",  "pocket",  "thunder", "basket",  "meadow",  "copper", "island",  "mirror",
    "lantern", "feather", "valley",  "engine",  "pepper",  "signal", "blanket", "compass",
    "saddle",  "marble",  "kettle",  "velvet",  "anchor",  "canyon", "pencil",  "ribbon",
    "glacier", "tunnel",  "orchard", "parcel",  "falcon",  "meteor", "puzzle",  "harvest",
    "cottage", "shadow",  "circle",  "button",  "planet",  "violin", "desert",  "spider",
    "cabinet", "rocket",  "tomato",  "crystal", "journey", "pillow", "summer",  "wagon"};

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// True when 64^words >= count.
bool enough_prompts(size_t count, int words) {
  double possible = 1;
  for (int i = 0; i < words && possible < static_cast<double>(count); ++i) possible *= 64;
  return possible >= static_cast<double>(count);
}

}  // namespace

size_t prompt_word_list_size() {
  return kWords.size();
}

std::vector<std::string> make_prompts(size_t count, int words, uint64_t seed) {
  if (words < 1) throw std::invalid_argument("--prompt-words must be at least 1");
  if (!enough_prompts(count, words)) {
    throw std::invalid_argument("--prompt-words " + std::to_string(words) + " cannot make " +
                                std::to_string(count) + " different prompts (64^words < requests)");
  }
  std::vector<std::string> prompts;
  prompts.reserve(count);
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < count; ++i) {
    uint64_t state = seed * 0xD1B54A32D192ED03ull + i;
    std::string p;
    do {
      p.clear();
      for (int w = 0; w < words; ++w) {
        if (w > 0) p.push_back(' ');
        p.append(kWords[splitmix64(state) % kWords.size()]);
      }
    } while (!seen.insert(p).second);
    prompts.push_back(std::move(p));
  }
  return prompts;
}

}  // namespace shardlm::serve_bench
