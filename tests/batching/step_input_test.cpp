// StepInput: validate() names the broken field for every kind of malformed step, and the byte
// image round-trips (and rejects truncated or padded images).
#include <gtest/gtest.h>

#include "runtime/core/status.h"
#include "runtime/model/step_input.h"

namespace shardlm {
namespace {

// Two sequences, block_size 4: seq 0 prefills positions 0..4 (blocks 7, 2), seq 1 decodes
// position 6 (blocks 0, 5).
StepInput good_step() {
  StepInput s;
  s.tokens = {3, 4, 5, 6, 7, 9};
  s.positions = {0, 1, 2, 3, 4, 6};
  s.slot_mapping = {28, 29, 30, 31, 8, 22};
  s.seq_starts = {0, 5, 6};
  s.context_lens = {5, 7};
  s.max_blocks = 2;
  s.block_table = {7, 2, 0, 5};
  s.logits_rows = {4, 5};
  return s;
}

StepLimits limits() {
  StepLimits l;
  l.max_batch_tokens = 16;
  l.n_vocab = 10;
  l.n_blocks = 8;
  l.block_size = 4;
  l.max_position = 64;
  return l;
}

void expect_invalid(const StepInput& s, const std::string& needle) {
  try {
    validate(s, limits());
    ADD_FAILURE() << "accepted a step that should fail with '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(StepInput, GoodStepValidates) {
  EXPECT_NO_THROW(validate(good_step(), limits()));
}

TEST(StepInput, EveryMalformedFieldIsNamed) {
  StepInput s = good_step();
  s.tokens[2] = 10;
  expect_invalid(s, "outside the vocabulary");
  s = good_step();
  s.positions[1] = 2;
  expect_invalid(s, "position");
  s = good_step();
  s.slot_mapping[4] = 9;
  expect_invalid(s, "slot");
  s = good_step();
  s.block_table[1] = 8;
  expect_invalid(s, "outside the pool");
  s = good_step();
  s.seq_starts = {0, 6, 6};
  expect_invalid(s, "no tokens");
  s = good_step();
  s.logits_rows = {5, 4};
  expect_invalid(s, "logits_rows");
  s = good_step();
  s.context_lens[1] = 9;
  expect_invalid(s, "max_blocks");
  s = good_step();
  s.positions.pop_back();
  expect_invalid(s, "differ in length");
  s = good_step();
  StepLimits small = limits();
  small.max_batch_tokens = 4;
  EXPECT_THROW(validate(s, small), Error);
}

TEST(StepInput, ByteImageRoundTrips) {
  const StepInput s = good_step();
  const std::vector<uint8_t> bytes = serialize(s);
  const StepInput back = deserialize(bytes);
  EXPECT_EQ(back.tokens, s.tokens);
  EXPECT_EQ(back.positions, s.positions);
  EXPECT_EQ(back.slot_mapping, s.slot_mapping);
  EXPECT_EQ(back.seq_starts, s.seq_starts);
  EXPECT_EQ(back.context_lens, s.context_lens);
  EXPECT_EQ(back.max_blocks, s.max_blocks);
  EXPECT_EQ(back.block_table, s.block_table);
  EXPECT_EQ(back.logits_rows, s.logits_rows);
  for (size_t cut : {size_t{0}, size_t{3}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_THROW(deserialize(std::span<const uint8_t>(bytes.data(), cut)), Error) << cut;
  }
  std::vector<uint8_t> padded = bytes;
  padded.push_back(0);
  EXPECT_THROW(deserialize(padded), Error);
}

}  // namespace
}  // namespace shardlm
