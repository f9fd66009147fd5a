// StepInput checks and its byte image.
#include "runtime/model/step_input.h"

#include <cstring>

#include "runtime/core/status.h"

namespace shardlm {

namespace {

[[noreturn]] void bad(const std::string& what) {
  fail(StatusCode::kInvalidArg, "malformed step: " + what);
}

std::string num(int64_t v) {
  return std::to_string(v);
}

}  // namespace

void validate(const StepInput& step, const StepLimits& limits) {
  const int64_t T = step.n_tokens(), S = step.n_seqs();
  if (T <= 0) bad("no tokens");
  if (T > limits.max_batch_tokens) {
    bad(num(T) + " tokens > max_batch_tokens " + num(limits.max_batch_tokens));
  }
  if (static_cast<int64_t>(step.positions.size()) != T ||
      static_cast<int64_t>(step.slot_mapping.size()) != T) {
    bad("tokens [" + num(T) + "], positions [" + num(static_cast<int64_t>(step.positions.size())) +
        "] and slot_mapping [" + num(static_cast<int64_t>(step.slot_mapping.size())) +
        "] differ in length");
  }
  if (S <= 0 || static_cast<int64_t>(step.seq_starts.size()) != S + 1) {
    bad("seq_starts has " + num(static_cast<int64_t>(step.seq_starts.size())) + " entries for " +
        num(S) + " sequences (context_lens)");
  }
  if (step.max_blocks <= 0 || static_cast<int64_t>(step.block_table.size()) != S * step.max_blocks) {
    bad("block_table has " + num(static_cast<int64_t>(step.block_table.size())) +
        " entries, expected " + num(S) + " sequences x max_blocks " + num(step.max_blocks));
  }
  if (step.seq_starts.front() != 0 || step.seq_starts.back() != T) {
    bad("seq_starts must run from 0 to the token count " + num(T));
  }
  const int64_t bs = limits.block_size;
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = step.tokens[static_cast<size_t>(t)];
    if (id < 0 || id >= limits.n_vocab) {
      bad("token " + num(t) + " id " + num(id) + " outside the vocabulary of " +
          num(limits.n_vocab));
    }
  }
  for (int64_t s = 0; s < S; ++s) {
    if (step.seq_starts[static_cast<size_t>(s + 1)] <= step.seq_starts[static_cast<size_t>(s)]) {
      bad("sequence " + num(s) + " has no tokens (seq_starts not increasing)");
    }
  }
  for (int64_t s = 0; s < S; ++s) {
    const int32_t b = step.seq_starts[static_cast<size_t>(s)];
    const int32_t e = step.seq_starts[static_cast<size_t>(s + 1)];
    const int32_t ctx = step.context_lens[static_cast<size_t>(s)];
    if (ctx > limits.max_position) {
      bad("sequence " + num(s) + " context " + num(ctx) + " > context length " +
          num(limits.max_position));
    }
    if (ctx > static_cast<int64_t>(step.max_blocks) * bs) {
      bad("sequence " + num(s) + " context " + num(ctx) + " needs more than max_blocks " +
          num(step.max_blocks) + " blocks of " + num(bs));
    }
    const std::span<const int32_t> blocks = step.blocks_of(s);
    const int64_t n_blocks_used = (ctx + bs - 1) / bs;
    for (int64_t i = 0; i < n_blocks_used; ++i) {
      const int32_t blk = blocks[static_cast<size_t>(i)];
      if (blk < 0 || blk >= limits.n_blocks) {
        bad("sequence " + num(s) + " block " + num(i) + " id " + num(blk) + " outside the pool of " +
            num(limits.n_blocks) + " blocks");
      }
    }
    for (int32_t t = b; t < e; ++t) {
      const int32_t p = step.positions[static_cast<size_t>(t)];
      const int32_t want = ctx - (e - t);  // the sequence's new tokens end at ctx - 1
      if (p != want) {
        bad("sequence " + num(s) + " token " + num(t) + " at position " + num(p) + ", expected " +
            num(want) + " (positions contiguous, ending at context_lens - 1)");
      }
      const int64_t slot = step.slot_mapping[static_cast<size_t>(t)];
      if (slot < 0) continue;
      const int64_t expect = static_cast<int64_t>(blocks[static_cast<size_t>(p / bs)]) * bs + p % bs;
      if (slot != expect) {
        bad("token " + num(t) + " slot " + num(slot) + " is not its block table slot " +
            num(expect));
      }
    }
  }
  int64_t prev = -1;
  for (int32_t r : step.logits_rows) {
    if (r <= prev || r >= T) {
      bad("logits_rows must be ascending rows below " + num(T) + ", got " + num(r));
    }
    prev = r;
  }
}

namespace {

template <class T>
void put(std::vector<uint8_t>& out, const std::vector<T>& v) {
  const uint64_t n = v.size();
  const size_t at = out.size();
  out.resize(at + sizeof n + n * sizeof(T));
  std::memcpy(out.data() + at, &n, sizeof n);
  if (n) std::memcpy(out.data() + at + sizeof n, v.data(), n * sizeof(T));
}

template <class T>
void take(std::span<const uint8_t>& in, std::vector<T>& v, const char* field) {
  uint64_t n = 0;
  if (in.size() < sizeof n) bad(std::string("truncated before ") + field);
  std::memcpy(&n, in.data(), sizeof n);
  in = in.subspan(sizeof n);
  if (n > in.size() / sizeof(T)) bad(std::string("truncated in ") + field);
  v.resize(n);
  if (n) std::memcpy(v.data(), in.data(), n * sizeof(T));
  in = in.subspan(n * sizeof(T));
}

constexpr uint32_t kMagic = 0x50455453;  // "STEP"

}  // namespace

std::vector<uint8_t> serialize(const StepInput& step) {
  std::vector<uint8_t> out(sizeof(uint32_t) + sizeof(int32_t));
  std::memcpy(out.data(), &kMagic, sizeof kMagic);
  std::memcpy(out.data() + sizeof kMagic, &step.max_blocks, sizeof step.max_blocks);
  put(out, step.tokens);
  put(out, step.positions);
  put(out, step.slot_mapping);
  put(out, step.seq_starts);
  put(out, step.context_lens);
  put(out, step.block_table);
  put(out, step.logits_rows);
  return out;
}

StepInput deserialize(std::span<const uint8_t> in) {
  StepInput s;
  uint32_t magic = 0;
  if (in.size() < sizeof magic + sizeof s.max_blocks) bad("shorter than its header");
  std::memcpy(&magic, in.data(), sizeof magic);
  if (magic != kMagic) bad("bad magic");
  std::memcpy(&s.max_blocks, in.data() + sizeof magic, sizeof s.max_blocks);
  in = in.subspan(sizeof magic + sizeof s.max_blocks);
  take(in, s.tokens, "tokens");
  take(in, s.positions, "positions");
  take(in, s.slot_mapping, "slot_mapping");
  take(in, s.seq_starts, "seq_starts");
  take(in, s.context_lens, "context_lens");
  take(in, s.block_table, "block_table");
  take(in, s.logits_rows, "logits_rows");
  if (!in.empty()) bad(std::to_string(in.size()) + " trailing bytes");
  return s;
}

}  // namespace shardlm
