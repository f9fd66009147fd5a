// The load generator's prompts: `count` different prompts of `words` words each, drawn from a
// built-in list of 64 plain English words by a generator seeded with (seed, request index), so a
// run is repeatable and request i gets the same prompt in every run with the same seed. Prompts
// are made distinct (a repeated draw is drawn again), so no two requests share a prompt.
// Not a tokenizer: how many tokens W words make depends on the server's model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shardlm::serve_bench {

// Words in the built-in list (64).
size_t prompt_word_list_size();

// Prompts 0..count-1. Throws std::invalid_argument when `words` < 1, or when the list cannot make
// `count` distinct prompts of `words` words (64^words < count).
std::vector<std::string> make_prompts(size_t count, int words, uint64_t seed);

}  // namespace shardlm::serve_bench
