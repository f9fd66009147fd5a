// StepInput: everything one forward step needs, and the only value that crosses from the driver
// (scheduler, block manager, samplers) to the ranks. A step runs the tokens of several sequences
// at once, each sequence at its own positions: a prefill chunk of many tokens, or one decode
// token, in any mix. The tokens of one sequence are contiguous and in position order.
//
//   tokens[T], positions[T]      the step's tokens and their positions in their sequences
//   slot_mapping[T]              where each token's K/V goes in the paged pool:
//                                block * block_size + offset (-1: do not store)
//   seq_starts[S + 1]            sequence s owns token rows [seq_starts[s], seq_starts[s + 1])
//   context_lens[S]              tokens of sequence s in the KV cache after this step
//   block_table[S * max_blocks]  each sequence's blocks in position order, -1 padded
//   logits_rows[O]               the token rows whose logits (or argmax) the driver wants
//
// Plain data: no pointers into driver state, so it can be copied to another process unchanged
// (serialize() / deserialize()). validate() is what a rank runs before touching its KV pool: a
// malformed step is an Error(kInvalidArg) naming the field, never an out-of-bounds write.
// Not here: how steps are chosen (engine/scheduler.h) or executed (model/transformer.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace shardlm {

struct StepInput {
  std::vector<int32_t> tokens;        // [T]
  std::vector<int32_t> positions;     // [T]
  std::vector<int64_t> slot_mapping;  // [T]
  std::vector<int32_t> seq_starts;    // [S + 1], seq_starts[0] = 0, seq_starts[S] = T
  std::vector<int32_t> context_lens;  // [S]
  int32_t max_blocks = 0;             // columns of block_table
  std::vector<int32_t> block_table;   // [S, max_blocks]
  std::vector<int32_t> logits_rows;   // [O], ascending token rows

  int64_t n_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t n_seqs() const { return static_cast<int64_t>(context_lens.size()); }
  int64_t n_logits() const { return static_cast<int64_t>(logits_rows.size()); }
  // Row s of the block table.
  std::span<const int32_t> blocks_of(int64_t s) const {
    return {block_table.data() + s * max_blocks, static_cast<size_t>(max_blocks)};
  }
};

// The limits a rank checks a step against.
struct StepLimits {
  int64_t max_batch_tokens = 0;  // tokens per step (the rank's scratch is sized for this)
  int64_t n_vocab = 0;
  int64_t n_blocks = 0;  // blocks in the KV pool
  int64_t block_size = 0;
  int64_t max_position = 0;  // positions must be < this (the context length)
};

// Throws Error(kInvalidArg) naming the field and the numbers when the step is inconsistent:
// sizes, token ids, positions (contiguous per sequence and ending at context_lens[s] - 1),
// slots (inside the pool and equal to the block table's slot for that position), block ids,
// logits rows.
void validate(const StepInput& step, const StepLimits& limits);

// A flat little-endian byte image of the step, and back (deserialize validates the framing,
// not the contents: call validate()).
std::vector<uint8_t> serialize(const StepInput& step);
StepInput deserialize(std::span<const uint8_t> bytes);

}  // namespace shardlm
