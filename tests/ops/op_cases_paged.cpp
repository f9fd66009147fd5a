// The paged-KV ops' cases of the op-test harness (see op_cases.h): store_kv and
// paged_attention, the step engine's ops. The layouts are the union of those of the per-backend
// tests the harness replaced (cpu paged_kernels_test, vulkan paged_ops_test,
// cuda_paged_ops_test): shuffled non-contiguous block tables padded with -1, block sizes 16 and
// odd, steps mixing decode rows with prefill chunks that start mid-sequence (and a sequence with
// no tokens), MHA / GQA / MQA, head_dim 8..256, sliding windows with the blocks before them
// unmapped, decode contexts over 1000 keys (split-K), every KV dtype. Not the dense ops
// (op_cases_dense.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/ref_ops.h"
#include "runtime/core/status.h"
#include "tests/ops/op_cases.h"
#include "tests/runtime/paged_test_util.h"
#include "tests/runtime/test_util.h"

namespace shardlm::ops_test {

namespace {

using test::BlockAlloc;
using test::encode;
using test::Pools;
using test::random_floats;

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

// ---- store_kv ----

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// Random K/V rows in [-3, 3] with the conversions' hard cases at every third element from
// `first`: rounding ties, f16 / f8e4m3 overflow and subnormals, f32 subnormals, infinities, NaNs.
std::vector<float> kv_rows(size_t n, uint64_t seed, size_t first) {
  std::vector<float> x = random_floats(n, seed, 3.0f);
  const float specials[] = {
      NAN,
      from_bits(0x7fc00001u),  // quiet NaN with payload
      from_bits(0xff800001u),  // signalling NaN, negative
      INFINITY,
      -INFINITY,
      65504.0f,                // f16 max
      65519.0f,                // rounds to f16 max
      65520.0f,                // rounds to f16 inf
      70000.0f,                // f16 overflow
      -1e6f,                   // f16 overflow, negative
      from_bits(0x33000001u),  // just above half the smallest f16 subnormal
      from_bits(0x33000000u),  // exactly half: rounds to zero (even)
      from_bits(0x387fc000u),  // f16 subnormal, a tie
      -3.0e-6f,                // f16 subnormal
      1e-6f,                   // f16 subnormal
      -3e-8f,                  // below the f16 subnormals
      0x1p-15f + 0x1p-25f,     // f16 subnormal plus a fraction of a step
      -0x1p-24f,               // the smallest f16 subnormal
      0x1p-25f,                // half of it: a tie to zero
      from_bits(0x3f808000u),  // bf16 tie, rounds down to even
      from_bits(0x3f818000u),  // bf16 tie, rounds up to even
      1.0f + 0x1p-8f + 0x1p-9f,
      from_bits(0x3f800fffu),  // f16: just below a tie
      from_bits(0x3f801000u),  // f16 tie
      1.0f + 0x1p-11f,
      from_bits(0x00000123u),  // f32 subnormal
      from_bits(0x7f7fffffu),  // f32 max: bf16 rounds to inf
      3.0e38f,
      448.0f,              // f8e4m3 max
      464.0f,              // f8e4m3: a tie above its max (saturates)
      -1000.0f,            // f8e4m3 overflow, negative: saturates
      1.0625f,             // f8e4m3 tie, rounds down to even
      1.1875f,             // f8e4m3 tie, rounds up to even
      0x1p-10f,            // f8e4m3: half its smallest subnormal, a tie to zero
      -0x3p-10f,           // f8e4m3 subnormal tie, rounds up to even
      0x1p-6f - 0x1p-12f,  // f8e4m3: just below its smallest normal, rounds up to it
  };
  for (size_t i = 0; i < std::size(specials) && first + 3 * i < n; ++i) {
    x[first + 3 * i] = specials[i];
  }
  return x;
}

struct StoreShape {
  int64_t n_head_kv, head_dim, n_tokens, n_slots;
  bool all_skipped = false;  // every slot negative: the pools keep every byte
};

// A backend that does not store `dt` pools skips the case (kUnsupported: a skip).
void need_kv_dtype(OpRun& r, DType dt) {
  if (!r.backend().supports_kv_dtype(dt))
    fail(StatusCode::kUnsupported, std::string("no ") + dtype_name(dt) + " KV pools");
}

void run_store_kv_shape(OpRun& r, DType dt, const StoreShape& s, uint64_t seed) {
  const int64_t row = s.n_head_kv * s.head_dim;
  const auto k = kv_rows(sz(s.n_tokens * row), seed, 1);
  const auto v = kv_rows(sz(s.n_tokens * row), seed + 1, 2);
  // Distinct slots shuffled over the pool; every fifth token (from the third) skipped.
  std::vector<int64_t> slots(sz(s.n_slots));
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), std::mt19937_64(seed + 2));
  slots.resize(sz(s.n_tokens));
  for (size_t t = 2; t < slots.size(); t += 5) slots[t] = -1;
  if (s.all_skipped) std::fill(slots.begin(), slots.end(), -1);
  const auto k0 = encode(random_floats(sz(s.n_slots * row), seed + 3), dt);
  const auto v0 = encode(random_floats(sz(s.n_slots * row), seed + 4), dt);
  std::vector<uint8_t> k_want = k0, v_want = v0;
  ref::store_kv(k.data(), v.data(), slots.data(), s.n_tokens, s.n_head_kv, s.head_dim, dt,
                k_want.data(), v_want.data());

  const Tensor tk = r.input(k, {s.n_tokens, s.n_head_kv, s.head_dim});  // k [n_tokens, kv, hd]
  const Tensor tv = r.input(v, {s.n_tokens, s.n_head_kv, s.head_dim});  // v [n_tokens, kv, hd]
  const Tensor kp = r.input_bytes(k0, dt, {s.n_slots, s.n_head_kv, s.head_dim});  // [n_slots, ..]
  const Tensor vp = r.input_bytes(v0, dt, {s.n_slots, s.n_head_kv, s.head_dim});  // [n_slots, ..]
  r.backend().store_kv(tk, tv, slots, kp, vp);
  const std::string what =
      std::string("store_kv ") + dtype_name(dt) + " " + std::to_string(s.n_tokens) + " tokens of " +
      std::to_string(s.n_head_kv) + "x" + std::to_string(s.head_dim) + " into " +
      std::to_string(s.n_slots) + " slots" + (s.all_skipped ? ", all skipped" : "");
  r.check_bytes(r.read_bytes(kp), k_want, dtype_size(dt), what + ": k pool");
  r.check_bytes(r.read_bytes(vp), v_want, dtype_size(dt), what + ": v pool");
  r.free_all();
}

void run_store_kv(OpRun& r, DType dt, bool odd_rows) {
  // A decode step (written, and skipped); a chunk (one cpu thread's share); most of a pool
  // (split over threads and workgroups); vulkan's shapes. Odd rows (n_head_kv * head_dim) on
  // their own: a 16-bit pool written in 32-bit words (vulkan without 16-bit storage) needs even
  // rows.
  const StoreShape even[] = {{3, 20, 1, 16},     {3, 20, 1, 16, true}, {3, 20, 37, 64},
                             {3, 20, 900, 1000}, {3, 10, 37, 80},      {2, 64, 5, 48}};
  const StoreShape odd[] = {{1, 7, 9, 15}, {3, 5, 40, 41}};
  uint64_t seed = 100;
  if (!odd_rows) {
    for (const StoreShape& s : even) run_store_kv_shape(r, dt, s, seed += 5);
  }
  if (odd_rows || dt == DType::kF32) {
    for (const StoreShape& s : odd) run_store_kv_shape(r, dt, s, seed += 5);
  }
}

// ---- paged_attention: steps ----

// One sequence of a step: `n_query` query tokens at its last positions, context - n_query ..
// context - 1 (n_query 0: a sequence in the step with no tokens).
struct SeqSpec {
  int64_t context, n_query;
};

// A step's layout: block tables of shuffled distinct blocks, padded with -1 to one column more
// than the longest. With a window, blocks wholly before every query's window may be unmapped
// (-1), as a sliding-window pool frees them.
struct PagedStep {
  std::vector<int32_t> pos, seq_starts{0}, block_table;
  int64_t max_blocks = 0, block_size = 0;

  PagedStep(const std::vector<SeqSpec>& seqs, int64_t bs, BlockAlloc& alloc,
            int64_t unmap_before_window = 0);
  int64_t n_tokens() const { return static_cast<int64_t>(pos.size()); }
  int64_t n_seqs() const { return static_cast<int64_t>(seq_starts.size()) - 1; }
  StepLayoutView view() const {
    return {pos.data(), n_tokens(), seq_starts.data(), n_seqs(), block_table.data(), max_blocks};
  }
  StepLayout layout() const {
    StepLayout l;
    l.positions = pos;
    l.seq_starts = seq_starts;
    l.block_table = block_table;
    l.max_blocks = max_blocks;
    l.block_size = block_size;
    return l;
  }
};

int64_t blocks_for(int64_t n_pos, int64_t bs) {
  return (n_pos + bs - 1) / bs;
}

PagedStep::PagedStep(const std::vector<SeqSpec>& seqs, int64_t bs, BlockAlloc& alloc,
                     int64_t unmap_before_window)
    : block_size(bs) {
  for (const SeqSpec& s : seqs) max_blocks = std::max(max_blocks, blocks_for(s.context, bs));
  ++max_blocks;
  for (const SeqSpec& s : seqs) {
    std::vector<int32_t> row(sz(max_blocks), -1);
    const std::vector<int32_t> blocks = alloc.take(blocks_for(s.context, bs));
    std::copy(blocks.begin(), blocks.end(), row.begin());
    const int64_t first = s.context - s.n_query;
    if (unmap_before_window > 0 && s.n_query > 0) {
      const int64_t lo = std::max<int64_t>(0, first - unmap_before_window + 1);
      for (int64_t i = 0; (i + 1) * bs <= lo; ++i) row[sz(i)] = -1;
    }
    block_table.insert(block_table.end(), row.begin(), row.end());
    for (int64_t p = first; p < s.context; ++p) pos.push_back(static_cast<int32_t>(p));
    seq_starts.push_back(static_cast<int32_t>(pos.size()));
  }
}

int64_t blocks_needed(const std::vector<SeqSpec>& seqs, int64_t bs) {
  int64_t n = 0;
  for (const SeqSpec& s : seqs) n += blocks_for(s.context, bs);
  return n;
}

struct Heads {
  int64_t n_head, n_head_kv, head_dim;
};

std::string describe(const Pools& pools, int64_t n_head, int64_t window, const std::string& what) {
  return what + ", block_size " + std::to_string(pools.block_size) + ", heads " +
         std::to_string(n_head) + "/" + std::to_string(pools.n_head_kv) + ", head_dim " +
         std::to_string(pools.head_dim) + ", window " + std::to_string(window);
}

// The pools on the backend (scratch, as the engine's KV pool).
struct DevicePools {
  Tensor k, v;  // [n_slots, n_head_kv, head_dim] (dtype)
};

DevicePools upload(OpRun& r, const Pools& p) {
  return {r.input_bytes(p.k, p.dtype, {p.n_slots, p.n_head_kv, p.head_dim}),
          r.input_bytes(p.v, p.dtype, {p.n_slots, p.n_head_kv, p.head_dim})};
}

// ref::paged_attention (its bf16 twin in the bf16 activation mode) and the backend on one step
// (q in [-2, 2]); `repeat` runs the backend again on the same tensors (buffers reused and
// rewritten).
void check_step(OpRun& r, const Pools& pools, const DevicePools& dev, const PagedStep& step,
                int64_t n_head, int64_t window, uint64_t seed, const std::string& what,
                float scale = 0, int repeat = 1) {
  const int64_t hd = pools.head_dim, T = step.n_tokens();
  if (scale == 0) scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto q = random_floats(sz(T * n_head * hd), seed, 2.0f);
  std::vector<float> want(q.size());
  if (r.bf16_activations()) {
    ref::paged_attention_bf16_activations(q.data(), n_head, pools.view(), step.view(), window,
                                          scale, want.data());
  } else {
    ref::paged_attention(q.data(), n_head, pools.view(), step.view(), window, scale, false,
                         want.data());
  }
  const Tensor tq = r.input(q, {T, n_head, hd});  // q [n_tokens, n_head, head_dim]
  const Tensor out = r.output({T, n_head * hd});  // out [n_tokens, n_head * head_dim]
  for (int i = 0; i < repeat; ++i) {
    r.backend().paged_attention(tq, dev.k, dev.v, step.layout(), window, scale, out);
    r.check({Op::kPagedAttention, pools.dtype, T}, r.read(out), want,
            describe(pools, n_head, window, what) + (i > 0 ? " (again)" : ""));
  }
}

// ---- paged_attention: cases ----

// Steps mixing every kind of row, each with the head layouts it was written for (cpu's and
// cuda's paged tests), at block sizes 16 and 5 and windows 0 and 13.
struct MixedSteps {
  std::vector<Heads> heads;
  std::vector<SeqSpec> (*seqs)(int64_t block_size);
};

// A first decode; decodes mid-block and just past a block boundary; a 2-token decode (rows of
// two lengths); chunks that start mid-sequence (9 at 20..28, 6 at 150..155); a 40-token
// prompt from 0 (cpu: 2 tiles at 4+ heads per group); a sequence with no tokens. Head layouts:
// MHA, GQA 3 (head_dim 20) and 4, MQA.
std::vector<SeqSpec> cpu_mixed_step(int64_t bs) {
  return {{1, 1}, {37, 1}, {3 * bs + 1, 1}, {50, 2}, {29, 9}, {40, 40}, {156, 6}, {10, 0}};
}
// A first decode; decodes mid-block and past a block boundary; a 3-token chunk (cuda: split-K
// decode kernel); a 29-token chunk mid-sequence and a 17-token prompt from 0 (tiled kernel); a
// 9-token chunk (the smallest tiled run). Head layouts: MHA, GQA 4 and 2 (head_dim 16), MQA
// with group 12 (two decode head chunks, head_dim 24), GQA 16 at head_dim 256 (one token per
// prefill tile, > 48 KiB of shared memory; cuda's test had 32/2 heads, 16/1 costs half).
std::vector<SeqSpec> cuda_mixed_step(int64_t bs) {
  return {{1, 1}, {37, 1}, {53, 3}, {3 * bs + 1, 1}, {52, 29}, {17, 17}, {2 * bs + 4, 9}};
}

const MixedSteps kMixedSteps[] = {
    {{{4, 4, 32}, {6, 2, 20}, {8, 2, 128}, {4, 1, 64}}, cpu_mixed_step},
    {{{4, 4, 64}, {8, 2, 128}, {12, 1, 24}, {16, 1, 256}, {6, 3, 16}}, cuda_mixed_step},
};

void run_paged_mixed(OpRun& r, DType dt) {
  uint64_t seed = 200;
  for (int64_t bs : {16, 5}) {
    for (const MixedSteps& m : kMixedSteps) {
      const std::vector<SeqSpec> seqs = m.seqs(bs);
      for (const Heads& h : m.heads) {
        const int64_t n_blocks = blocks_needed(seqs, bs) + 7;
        BlockAlloc alloc(n_blocks, ++seed);
        const PagedStep step(seqs, bs, alloc);
        const Pools pools(n_blocks, bs, h.n_head_kv, h.head_dim, dt, ++seed);
        const DevicePools dev = upload(r, pools);
        for (int64_t window : {0, 13}) {
          check_step(r, pools, dev, step, h.n_head, window, ++seed, "mixed step");
        }
        r.free_all();
      }
    }
  }
}

// Odd block sizes (5, 7, 3), head_dim 30 / 256 / 8, windows whose earlier blocks are unmapped,
// a lone first token.
struct OddLayout {
  const char* name;
  Heads heads;
  int64_t block_size, window;
  std::vector<SeqSpec> seqs;
};

void run_paged_odd_layouts(OpRun& r, DType dt) {
  const OddLayout layouts[] = {
      {"mha", {4, 4, 16}, 16, 0, {{7, 7}, {21, 1}, {38, 5}, {16, 1}, {33, 2}}},
      {"gqa", {8, 2, 48}, 5, 0, {{1, 1}, {10, 1}, {22, 12}, {48, 1}, {7, 4}}},
      {"mqa window 6", {8, 1, 32}, 16, 6, {{43, 3}, {10, 10}, {64, 1}}},
      {"gqa window 20", {6, 3, 30}, 7, 20, {{51, 1}, {14, 9}, {102, 2}}},
      {"long decode", {4, 2, 64}, 16, 0, {{1501, 1}, {1101, 1}, {3, 3}}},
      {"head_dim 256", {2, 1, 256}, 3, 0, {{261, 1}, {34, 4}}},
      {"one token", {2, 2, 8}, 16, 0, {{1, 1}}},
  };
  uint64_t seed = 300;
  for (const OddLayout& l : layouts) {
    const int64_t n_blocks = blocks_needed(l.seqs, l.block_size) + 5;
    BlockAlloc alloc(n_blocks, ++seed);
    const PagedStep step(l.seqs, l.block_size, alloc, l.window);
    const Pools pools(n_blocks, l.block_size, l.heads.n_head_kv, l.heads.head_dim, dt, ++seed);
    check_step(r, pools, upload(r, pools), step, l.heads.n_head, l.window, ++seed, l.name);
    r.free_all();
  }
}

// Decodes over > 1000 keys: split into key ranges (cpu with threads, cuda, vulkan's split
// variants) whose partial softmaxes are merged; windows that cut the ranges.
struct LongDecode {
  Heads heads;
  std::vector<SeqSpec> seqs;
  int64_t window;  // besides 0
};

void run_paged_long_decode(OpRun& r, DType dt) {
  const LongDecode steps[] = {
      {{8, 2, 128}, {{2000, 1}}, 300},                               // one sequence alone
      {{8, 2, 128}, {{1100, 1}, {1500, 1}, {700, 1}, {1, 1}}, 300},  // a few decoding together
      // + a chunk (cuda's test had 32/8 heads; 16/4 keeps GQA 4 at half the cost)
      {{16, 4, 128}, {{1500, 1}, {1100, 1}, {64, 1}, {2, 1}, {1037, 4}}, 700},
      {{8, 1, 64}, {{2333, 1}}, 700},  // MQA alone
  };
  uint64_t seed = 400;
  for (const LongDecode& l : steps) {
    const int64_t bs = 16, n_blocks = blocks_needed(l.seqs, bs) + 3;
    BlockAlloc alloc(n_blocks, ++seed);
    const PagedStep step(l.seqs, bs, alloc);
    const Pools pools(n_blocks, bs, l.heads.n_head_kv, l.heads.head_dim, dt, ++seed);
    const DevicePools dev = upload(r, pools);
    for (int64_t window : {int64_t{0}, l.window}) {
      check_step(r, pools, dev, step, l.heads.n_head, window, ++seed,
                 "long decode x" + std::to_string(l.seqs.size()));
    }
    r.free_all();
  }
}

// Steps of one kind: a lone decode (cuda: the graph-captured shape), a long prefill chunk from
// 30 (with and without a window) and a 70-token chunk after a 1200-token prefix (cpu: tiled
// items over many key chunks).
void run_paged_prefill(OpRun& r, DType dt) {
  struct Chunk {
    Heads heads;
    SeqSpec seq;
    int64_t window;
  };
  const Chunk chunks[] = {{{8, 2, 64}, {200, 1}, 0},
                          {{8, 2, 64}, {180, 150}, 0},
                          {{8, 2, 64}, {180, 150}, 40},
                          {{6, 2, 64}, {1270, 70}, 0}};
  uint64_t seed = 500;
  for (const Chunk& c : chunks) {
    const int64_t bs = 16, n_blocks = blocks_for(c.seq.context, bs) + 2;
    BlockAlloc alloc(n_blocks, ++seed);
    const PagedStep step({c.seq}, bs, alloc);
    const Pools pools(n_blocks, bs, c.heads.n_head_kv, c.heads.head_dim, dt, ++seed);
    check_step(r, pools, upload(r, pools), step, c.heads.n_head, c.window, ++seed,
               std::to_string(c.seq.n_query) + "-token chunk at " +
                   std::to_string(c.seq.context - c.seq.n_query));
    r.free_all();
  }
}

// One sequence: paged attention over its block table (identity: the pool is a contiguous
// cache; shuffled) and the contiguous attention op over its keys gathered into rows
// (ref::gather_kv, exact), both against ref::attention of the gathered rows (paged attention
// against its bf16 twin in the bf16 activation mode).
void check_paged_vs_attention(OpRun& r, DType dt, const std::vector<int32_t>& table, const Heads& h,
                              int64_t bs, int64_t n_kv, int64_t n_query, int64_t window,
                              float scale, uint64_t seed) {
  const int64_t n_blocks = *std::max_element(table.begin(), table.end()) + 1;
  const Pools pools(n_blocks, bs, h.n_head_kv, h.head_dim, dt, seed);
  const int64_t row = h.n_head_kv * h.head_dim, hd = h.head_dim;
  std::vector<float> k(sz(n_kv * row)), v(k.size());
  ref::gather_kv(pools.view(), table.data(), n_kv, k.data(), v.data());
  std::vector<int32_t> pos(sz(n_query)), starts = {0, static_cast<int32_t>(n_query)};
  std::iota(pos.begin(), pos.end(), static_cast<int32_t>(n_kv - n_query));
  const auto q = random_floats(sz(n_query * h.n_head * hd), seed + 1, 2.0f);
  std::vector<float> want(q.size());
  ref::attention(q.data(), k.data(), v.data(), pos.data(), n_query, n_kv, h.n_head, h.n_head_kv, hd,
                 window, scale, want.data());
  StepLayout layout;
  layout.positions = pos;
  layout.seq_starts = starts;
  layout.block_table = table;
  layout.max_blocks = static_cast<int64_t>(table.size());
  layout.block_size = bs;
  const DevicePools dev = upload(r, pools);
  const Tensor tq = r.input(q, {n_query, h.n_head, hd});  // q [n_tokens, n_head, head_dim]
  const Tensor tk = r.input(k, {n_kv, h.n_head_kv, hd});  // k [n_kv, n_head_kv, head_dim]
  const Tensor tv = r.input(v, {n_kv, h.n_head_kv, hd});  // v [n_kv, n_head_kv, head_dim]
  const Tensor paged = r.output({n_query, h.n_head * hd});
  const Tensor contiguous = r.output({n_query, h.n_head * hd});
  r.backend().paged_attention(tq, dev.k, dev.v, layout, window, scale, paged);
  r.backend().attention(tq, tk, tv, pos, window, scale, contiguous);
  const std::string what =
      describe(pools, h.n_head, window,
               std::to_string(n_query) + " queries over " + std::to_string(n_kv) + " keys");
  std::vector<float> want_paged = want;  // the bf16 activation mode rounds paged attention's
  if (r.bf16_activations()) {            // operands: its twin on the same table
    const StepLayoutView lv{pos.data(), n_query,      starts.data(),
                            1,          table.data(), static_cast<int64_t>(table.size())};
    ref::paged_attention_bf16_activations(q.data(), h.n_head, pools.view(), lv, window, scale,
                                          want_paged.data());
  }
  r.check({Op::kPagedAttention, dt, n_query}, r.read(paged), want_paged, what + ": paged");
  r.check({Op::kAttention, dt, n_query}, r.read(contiguous), want, what + ": contiguous");
  r.free_all();
}

void run_paged_vs_attention(OpRun& r) {
  uint64_t seed = 600;
  for (DType dt : kAllDtypes) {
    // The identity table (cpu's test), 77 keys in blocks of 16.
    std::vector<int32_t> identity(sz(blocks_for(77, 16)));
    std::iota(identity.begin(), identity.end(), 0);
    for (int64_t n_query : {1, 3, 20}) {
      for (int64_t window : {0, 9}) {
        check_paged_vs_attention(r, dt, identity, {6, 2, 32}, 16, 77, n_query, window,
                                 1.0f / std::sqrt(32.0f), seed += 2);
      }
    }
    // A shuffled table (vulkan's test): 6 queries after 90 keys, scale 0.17.
    BlockAlloc alloc(11, ++seed);
    check_paged_vs_attention(r, dt, alloc.take(6), {8, 2, 32}, 16, 96, 6, 0, 0.17f, seed += 2);
  }
}

// 300 sequences x 1200 block-table columns (1.4 MB: outside vulkan's parameter arena), blocks
// drawn with repeats; run twice on the same tensors (the table's buffer reused).
void run_paged_large_block_table(OpRun& r) {
  const int64_t n_seq = 300, max_blocks = 1200, bs = 2, n_head = 2, hd = 8, n_blocks = 64;
  std::vector<int32_t> table(sz(n_seq * max_blocks), -1), pos, starts = {0};
  std::mt19937 rng(501);
  std::uniform_int_distribution<int32_t> block(0, static_cast<int32_t>(n_blocks - 1));
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t p = (s * 37) % 23;
    for (int64_t i = 0; i <= p / bs; ++i) table[sz(s * max_blocks + i)] = block(rng);
    pos.push_back(static_cast<int32_t>(p));
    starts.push_back(static_cast<int32_t>(pos.size()));
  }
  const Pools pools(n_blocks, bs, 1, hd, DType::kF32, 502);
  const int64_t T = n_seq;
  const auto q = random_floats(sz(T * n_head * hd), 504);
  const StepLayoutView lv{pos.data(), T, starts.data(), n_seq, table.data(), max_blocks};
  std::vector<float> want(q.size());
  if (r.bf16_activations()) {
    ref::paged_attention_bf16_activations(q.data(), n_head, pools.view(), lv, 0, 0.3f, want.data());
  } else {
    ref::paged_attention(q.data(), n_head, pools.view(), lv, 0, 0.3f, false, want.data());
  }
  StepLayout layout;
  layout.positions = pos;
  layout.seq_starts = starts;
  layout.block_table = table;
  layout.max_blocks = max_blocks;
  layout.block_size = bs;
  const DevicePools dev = upload(r, pools);
  const Tensor tq = r.input(q, {T, n_head, hd});  // q [n_tokens, n_head, head_dim]
  const Tensor out = r.output({T, n_head * hd});  // out [n_tokens, n_head * head_dim]
  for (int rep = 0; rep < 2; ++rep) {
    r.backend().paged_attention(tq, dev.k, dev.v, layout, 0, 0.3f, out);
    r.check({Op::kPagedAttention, DType::kF32, T}, r.read(out), want,
            "300 sequences, 1200-column block table" + std::string(rep ? " (again)" : ""));
  }
  r.free_all();
}

}  // namespace

std::vector<OpCase> paged_op_cases() {
  std::vector<OpCase> c;
  for (DType dt : kKvDtypes) {
    c.push_back({std::string("store_kv_") + dtype_name(dt), Op::kStoreKv, [dt](OpRun& r) {
                   need_kv_dtype(r, dt);
                   run_store_kv(r, dt, false);
                 }});
  }
  for (DType dt : {DType::kF16, DType::kBF16}) {
    c.push_back({std::string("store_kv_") + dtype_name(dt) + "_odd_rows", Op::kStoreKv,
                 [dt](OpRun& r) { run_store_kv(r, dt, true); }});
  }
  for (DType dt : kKvDtypes) {
    const std::string p = std::string("paged_attention_") + dtype_name(dt);
    auto with = [dt](void (*run)(OpRun&, DType)) {
      return [dt, run](OpRun& r) {
        need_kv_dtype(r, dt);
        run(r, dt);
      };
    };
    c.push_back({p + "_mixed", Op::kPagedAttention, with(run_paged_mixed)});
    c.push_back({p + "_odd_layouts", Op::kPagedAttention, with(run_paged_odd_layouts)});
    c.push_back({p + "_long_decode", Op::kPagedAttention, with(run_paged_long_decode)});
    c.push_back({p + "_prefill", Op::kPagedAttention, with(run_paged_prefill)});
  }
  c.push_back({"paged_attention_vs_attention", Op::kPagedAttention, run_paged_vs_attention});
  c.push_back(
      {"paged_attention_large_block_table", Op::kPagedAttention, run_paged_large_block_table});
  return c;
}

}  // namespace shardlm::ops_test
