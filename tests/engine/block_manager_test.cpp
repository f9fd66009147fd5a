// BlockManager (runtime/engine/block_manager.h): allocation and free, prefix-cache hits and their
// counters, salt and disabled cache, collision safety under a deliberately colliding hash, LRU
// eviction order, truncate and fork semantics, API misuse, and a randomized stress run that
// simulates the KV pool content to prove a prefix hit never serves KV of other tokens.
// check_invariants() runs after every operation. No backend, no model.
#include "runtime/engine/block_manager.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/status.h"

namespace shardlm {
namespace {

constexpr int64_t kBs = 16;

std::vector<int32_t> seq_tokens(int64_t n, int32_t start) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = start + static_cast<int32_t>(i);
  return t;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<int32_t> table_of(const BlockManager& bm, SeqId seq) {
  const auto t = bm.block_table(seq);
  return {t.begin(), t.end()};
}

// Reserves and commits the first n tokens, as the engine does after a step.
void compute(BlockManager& bm, SeqId seq, const std::vector<int32_t>& tokens, int64_t n) {
  ASSERT_TRUE(bm.reserve(seq, n)) << "seq " << seq << " n " << n;
  bm.commit(seq, tokens, n);
  bm.check_invariants();
}

void expect_error(StatusCode code, const std::string& needle, const std::function<void()>& f) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

uint64_t always_42(uint64_t, std::span<const int32_t>) {
  return 42;
}

TEST(BlockManagerTest, TablesGrowBlockByBlockAndFreeReturnsEveryBlock) {
  BlockManager bm(8, kBs, 7);
  EXPECT_EQ(bm.n_blocks(), 8);
  EXPECT_EQ(bm.block_size(), kBs);
  EXPECT_EQ(bm.n_free(), 8);
  EXPECT_EQ(bm.add_sequence(1, seq_tokens(5, 0)), 0);
  EXPECT_TRUE(bm.block_table(1).empty());
  for (int64_t n = 1; n <= 3 * kBs; ++n) {
    ASSERT_TRUE(bm.reserve(1, n));
    EXPECT_EQ(static_cast<int64_t>(bm.block_table(1).size()), (n + kBs - 1) / kBs) << n;
    EXPECT_EQ(bm.n_tokens_capacity(1), bm.block_table(1).size() * kBs);
    bm.check_invariants();
  }
  EXPECT_EQ(table_of(bm, 1), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(bm.blocks_needed(1, 3 * kBs), 0);
  EXPECT_EQ(bm.blocks_needed(1, 3 * kBs + 1), 1);
  ASSERT_TRUE(bm.reserve(1, kBs));  // never shrinks
  EXPECT_EQ(bm.block_table(1).size(), 3u);
  EXPECT_EQ(bm.n_used(), 3);
  EXPECT_EQ(bm.n_free(), 5);
  for (int32_t b : bm.block_table(1)) EXPECT_EQ(bm.ref_count(b), 1);

  bm.add_sequence(2, seq_tokens(3, 100));
  ASSERT_TRUE(bm.reserve(2, 2 * kBs));
  EXPECT_EQ(bm.n_used(), 5);
  bm.check_invariants();
  bm.free_sequence(1);
  bm.check_invariants();
  EXPECT_FALSE(bm.contains(1));
  EXPECT_EQ(bm.n_used(), 2);
  bm.free_sequence(2);
  bm.check_invariants();
  EXPECT_EQ(bm.n_used(), 0);
  EXPECT_EQ(bm.n_free(), bm.n_blocks());
  EXPECT_EQ(bm.n_sequences(), 0);
}

TEST(BlockManagerTest, FullPoolReserveReturnsFalseAndChangesNothing) {
  BlockManager bm(4, kBs, 7);
  bm.add_sequence(1, seq_tokens(10, 0));
  ASSERT_TRUE(bm.reserve(1, 3 * kBs));
  bm.add_sequence(2, seq_tokens(10, 50));
  EXPECT_TRUE(bm.can_reserve(2, kBs));
  EXPECT_FALSE(bm.can_reserve(2, kBs + 1));
  EXPECT_EQ(bm.blocks_needed(2, kBs + 1), 2);
  EXPECT_FALSE(bm.reserve(2, kBs + 1));
  EXPECT_TRUE(bm.block_table(2).empty());
  EXPECT_EQ(bm.n_free(), 1);
  EXPECT_EQ(bm.n_used(), 3);
  bm.check_invariants();
  ASSERT_TRUE(bm.reserve(2, kBs));
  EXPECT_EQ(bm.n_free(), 0);
  EXPECT_FALSE(bm.reserve(1, 3 * kBs + 1));
  EXPECT_EQ(bm.block_table(1).size(), 3u);
  bm.check_invariants();
  bm.free_sequence(1);
  bm.free_sequence(2);
  EXPECT_EQ(bm.n_free(), 4);
  bm.check_invariants();
}

TEST(BlockManagerTest, MisuseIsInvalidArgNamingSequenceAndNumbers) {
  expect_error(StatusCode::kInvalidArg, "block_size (0)", [] { BlockManager(4, 0, 1); });
  expect_error(StatusCode::kInvalidArg, "n_blocks (-1)", [] { BlockManager(-1, 16, 1); });
  BlockManager bm(4, kBs, 7);
  const auto t = seq_tokens(20, 0);
  bm.add_sequence(3, t);
  expect_error(StatusCode::kInvalidArg, "sequence 3", [&] { bm.add_sequence(3, t); });
  expect_error(StatusCode::kInvalidArg, "sequence 9", [&] { bm.reserve(9, 4); });
  expect_error(StatusCode::kInvalidArg, "(-1)", [&] { bm.reserve(3, -1); });
  expect_error(StatusCode::kInvalidArg, "sequence 9", [&] { bm.free_sequence(9); });
  expect_error(StatusCode::kInvalidArg, "sequence 9", [&] { bm.block_table(9); });
  expect_error(StatusCode::kInvalidArg, "sequence 9", [&] { bm.commit(9, t, 1); });
  ASSERT_TRUE(bm.reserve(3, 20));
  expect_error(StatusCode::kInvalidArg, "n_computed 33", [&] { bm.commit(3, t, 33); });
  expect_error(StatusCode::kInvalidArg, "5", [&] { bm.commit(3, std::span(t).first(5), 6); });
  bm.commit(3, t, 20);
  expect_error(StatusCode::kInvalidArg, "truncate", [&] { bm.commit(3, t, 19); });
  expect_error(StatusCode::kInvalidArg, "n_tokens 33", [&] { bm.truncate(3, 33); });
  expect_error(StatusCode::kInvalidArg, "sequence 9", [&] { bm.fork(9, 10); });
  expect_error(StatusCode::kInvalidArg, "sequence 3", [&] { bm.fork(3, 3); });
  expect_error(StatusCode::kInvalidArg, "block 4", [&] { bm.ref_count(4); });
  bm.check_invariants();
  bm.free_sequence(3);
  EXPECT_EQ(bm.n_free(), 4);
}

TEST(BlockManagerTest, SharedThreeBlockPrefixIsReusedWithRefTwoAndCounted) {
  BlockManager bm(16, kBs, 7);
  const auto prefix = seq_tokens(3 * kBs, 1000);
  const auto a = concat(prefix, seq_tokens(5, 1));
  const auto b = concat(prefix, seq_tokens(7, 500));
  EXPECT_EQ(bm.add_sequence(1, a), 0);
  compute(bm, 1, a, static_cast<int64_t>(a.size()));
  EXPECT_EQ(bm.n_cached(), 3);  // the partial fourth block is not cached
  EXPECT_EQ(bm.peek_cached_tokens(b), 3 * kBs);
  EXPECT_EQ(bm.blocks_needed_new(b, static_cast<int64_t>(b.size())), 1);  // hits are in use
  EXPECT_EQ(bm.add_sequence(2, b), 3 * kBs);
  bm.check_invariants();
  const auto ta = table_of(bm, 1), tb = table_of(bm, 2);
  ASSERT_EQ(tb.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(tb[i], ta[i]) << i;
    EXPECT_EQ(bm.ref_count(tb[i]), 2) << i;
  }
  EXPECT_EQ(bm.n_committed(2), 3 * kBs);
  EXPECT_EQ(bm.prefix_queried_tokens(), static_cast<int64_t>(a.size() + b.size()));
  EXPECT_EQ(bm.prefix_hit_tokens(), 3 * kBs);
  compute(bm, 2, b, static_cast<int64_t>(b.size()));
  EXPECT_NE(table_of(bm, 2)[3], ta[3]);
  bm.free_sequence(1);
  bm.free_sequence(2);
  bm.check_invariants();
  EXPECT_EQ(bm.n_used(), 0);
  EXPECT_EQ(bm.n_evictable(), 3);  // the shared prefix stays cached, evictable
  EXPECT_EQ(bm.n_free(), bm.n_blocks());
  // Hits on evictable blocks take them out of the free pool: blocks_needed_new counts them.
  EXPECT_EQ(bm.blocks_needed_new(b, static_cast<int64_t>(b.size())), 4);
  EXPECT_EQ(bm.add_sequence(3, b), 3 * kBs);
  EXPECT_EQ(bm.n_evictable(), 0);
  EXPECT_EQ(bm.n_free(), bm.n_blocks() - 3);
  bm.free_sequence(3);
  bm.check_invariants();
}

TEST(BlockManagerTest, PromptOfWholeBlocksReusesAllButTheLastBlock) {
  BlockManager bm(16, kBs, 7);
  const auto p = seq_tokens(4 * kBs, 3);
  bm.add_sequence(1, p);
  compute(bm, 1, p, 4 * kBs);
  EXPECT_EQ(bm.n_cached(), 4);
  EXPECT_EQ(bm.add_sequence(2, p), 3 * kBs);  // at least one token is left to compute
  ASSERT_TRUE(bm.reserve(2, 4 * kBs));
  EXPECT_NE(table_of(bm, 2)[3], table_of(bm, 1)[3]);
  bm.commit(2, p, 4 * kBs);  // an identical block is cached already: this one stays uncached
  bm.check_invariants();
  EXPECT_EQ(bm.n_cached(), 4);
  EXPECT_FALSE(bm.is_cached(table_of(bm, 2)[3]));
  // A one-block prompt never hits; neither does an empty one.
  EXPECT_EQ(bm.peek_cached_tokens(std::span(p).first(kBs)), 0);
  EXPECT_EQ(bm.peek_cached_tokens(std::span(p).first(kBs + 1)), kBs);
  EXPECT_EQ(bm.peek_cached_tokens({}), 0);
  bm.free_sequence(2);
  bm.free_sequence(1);
  bm.check_invariants();
  EXPECT_EQ(bm.n_free(), 16);
}

TEST(BlockManagerTest, KeysChainXxh3FromTheSaltAndDifferAcrossSalts) {
  const auto p = seq_tokens(2 * kBs + 1, 9);
  std::vector<uint64_t> keys[3];
  const uint64_t salts[3] = {1, 2, 1};
  for (int m = 0; m < 3; ++m) {
    BlockManager bm(4, kBs, salts[m]);
    bm.add_sequence(1, p);
    compute(bm, 1, p, static_cast<int64_t>(p.size()));
    for (int i = 0; i < 2; ++i) keys[m].push_back(bm.block_key(table_of(bm, 1)[i]).value());
    EXPECT_FALSE(bm.block_key(table_of(bm, 1)[2]).has_value());
  }
  const uint64_t k0 = XXH3_64bits_withSeed(p.data(), kBs * sizeof(int32_t), 1);
  const uint64_t k1 = XXH3_64bits_withSeed(p.data() + kBs, kBs * sizeof(int32_t), k0);
  EXPECT_EQ(keys[0], (std::vector<uint64_t>{k0, k1}));
  EXPECT_EQ(keys[0], keys[2]);
  EXPECT_NE(keys[0][0], keys[1][0]);
  EXPECT_NE(keys[0][1], keys[1][1]);
}

TEST(BlockManagerTest, DisabledCacheNeverHits) {
  BlockManager bm(8, kBs, 7, /*prefix_cache=*/false);
  EXPECT_FALSE(bm.prefix_cache_enabled());
  const auto p = seq_tokens(3 * kBs, 0);
  bm.add_sequence(1, p);
  compute(bm, 1, p, 3 * kBs);
  EXPECT_EQ(bm.n_cached(), 0);
  EXPECT_EQ(bm.add_sequence(2, p), 0);
  EXPECT_TRUE(bm.block_table(2).empty());
  EXPECT_EQ(bm.prefix_queried_tokens(), 0);
  EXPECT_EQ(bm.prefix_hit_tokens(), 0);
  bm.free_sequence(1);
  bm.free_sequence(2);
  EXPECT_EQ(bm.n_evictable(), 0);
  EXPECT_EQ(bm.n_free(), 8);
  bm.check_invariants();
}

TEST(BlockManagerTest, HashCollisionsNeverServeAnotherBlocksKv) {
  // Every key is 42: only the stored token ids and the parent entry tell blocks apart.
  BlockManager bm(16, 4, 7, true, always_42);
  const std::vector<int32_t> p1 = {1, 1, 1, 1}, p2 = {2, 2, 2, 2}, q = {5, 6, 7, 8};
  const auto a = concat(concat(p1, q), {9});  // [P1, Q] + 1
  const auto b = concat(concat(p2, q), {9});  // [P2, Q] + 1: Q's tokens equal, its parent not
  bm.add_sequence(1, a);
  compute(bm, 1, a, 9);
  EXPECT_EQ(bm.n_cached(), 2);
  EXPECT_EQ(bm.add_sequence(2, b), 0) << "P2 collides with P1 but its tokens differ";
  compute(bm, 2, b, 9);
  EXPECT_EQ(bm.n_cached(), 4) << "colliding but different blocks are all cached";
  // [P2, Q]: P2 hits sequence 2's block; of the two cached Q blocks (same tokens, same key) only
  // the one whose parent is that P2 entry may be served.
  EXPECT_EQ(bm.add_sequence(3, b), 8);
  EXPECT_EQ(table_of(bm, 3), (std::vector<int32_t>{table_of(bm, 2)[0], table_of(bm, 2)[1]}));
  EXPECT_NE(table_of(bm, 3)[1], table_of(bm, 1)[1]);
  // A block never cached misses even though its key collides with everything.
  EXPECT_EQ(bm.peek_cached_tokens(concat(concat(p1, {5, 6, 7, 0}), {9})), 4);
  EXPECT_EQ(bm.peek_cached_tokens(std::vector<int32_t>{3, 3, 3, 3, 9}), 0);
  bm.check_invariants();
  for (SeqId s : {1, 2, 3}) bm.free_sequence(s);
  bm.check_invariants();
  EXPECT_EQ(bm.n_free(), 16);
}

TEST(BlockManagerTest, LeastRecentlyUsedPrefixIsEvictedFirstAndTailBlocksBeforeHeads) {
  // 8 blocks of 4: four 2-block prefixes fill the pool with cached, unreferenced blocks.
  BlockManager bm(8, 4, 7);
  std::vector<std::vector<int32_t>> prefixes;
  for (int32_t k = 0; k < 4; ++k) {
    prefixes.push_back(seq_tokens(8, 100 * k));
    const SeqId id = static_cast<SeqId>(k + 1);
    bm.add_sequence(id, prefixes.back());
    compute(bm, id, prefixes.back(), 8);
    bm.free_sequence(id);
    bm.check_invariants();
  }
  EXPECT_EQ(bm.n_evictable(), 8);
  EXPECT_EQ(bm.n_free(), 8);
  const auto query = [&](int k) { return concat(prefixes[static_cast<size_t>(k)], {7}); };
  // Touch prefix 0 (the oldest): it becomes the most recently used.
  EXPECT_EQ(bm.add_sequence(10, query(0)), 8);
  bm.free_sequence(10);
  // Two fresh blocks evict prefix 1, now the least recently used, not prefix 0.
  bm.add_sequence(11, seq_tokens(3, 7000));
  ASSERT_TRUE(bm.reserve(11, 8));
  bm.check_invariants();
  EXPECT_EQ(bm.peek_cached_tokens(query(1)), 0);
  EXPECT_EQ(bm.peek_cached_tokens(query(0)), 8);
  EXPECT_EQ(bm.peek_cached_tokens(query(2)), 8);
  EXPECT_EQ(bm.peek_cached_tokens(query(3)), 8);
  // One more block: prefix 2's tail goes first, its head still hits.
  ASSERT_TRUE(bm.reserve(11, 12));
  EXPECT_EQ(bm.peek_cached_tokens(query(2)), 4);
  EXPECT_EQ(bm.peek_cached_tokens(query(0)), 8);
  EXPECT_EQ(bm.n_cached(), 5);
  bm.check_invariants();
  // The touched prefix still hits for real.
  EXPECT_EQ(bm.add_sequence(12, query(0)), 8);
  bm.free_sequence(12);
  bm.free_sequence(11);
  bm.check_invariants();
  EXPECT_EQ(bm.n_free(), 8);
}

TEST(BlockManagerTest, ResetPrefixCacheDropsOnlyUnreferencedEntries) {
  BlockManager bm(8, 4, 7);
  const auto a = seq_tokens(9, 0), b = seq_tokens(9, 50);
  bm.add_sequence(1, a);
  compute(bm, 1, a, 9);
  bm.add_sequence(2, b);
  compute(bm, 2, b, 9);
  bm.free_sequence(2);
  EXPECT_EQ(bm.n_cached(), 4);
  EXPECT_EQ(bm.reset_prefix_cache(), 2);
  bm.check_invariants();
  EXPECT_EQ(bm.n_cached(), 2);
  EXPECT_EQ(bm.n_evictable(), 0);
  EXPECT_EQ(bm.peek_cached_tokens(b), 0);
  EXPECT_EQ(bm.peek_cached_tokens(a), 8);
  bm.free_sequence(1);
  EXPECT_EQ(bm.n_free(), 8);
}

TEST(BlockManagerTest, TruncateWithinAndAcrossBlocks) {
  BlockManager bm(8, kBs, 7);
  const auto t = seq_tokens(40, 0);
  bm.add_sequence(1, t);
  compute(bm, 1, t, 40);  // blocks 0, 1 full and cached; block 2 holds 8 positions
  const auto full = table_of(bm, 1);
  EXPECT_EQ(bm.truncate(1, 36), 36);  // within the partial block
  EXPECT_EQ(table_of(bm, 1), full);
  EXPECT_EQ(bm.n_committed(1), 36);
  bm.check_invariants();
  EXPECT_EQ(bm.truncate(1, 38), 36) << "positions past the committed ones were never valid";
  // Into cached block 1, held only here: it leaves the cache and is kept.
  EXPECT_EQ(bm.truncate(1, 20), 20);
  bm.check_invariants();
  EXPECT_EQ(table_of(bm, 1), (std::vector<int32_t>{full[0], full[1]}));
  EXPECT_FALSE(bm.is_cached(full[1]));
  EXPECT_EQ(bm.n_cached(), 1);
  EXPECT_EQ(bm.n_free(), 6);
  // Recompute with other tokens: block 1 enters the cache with its new content.
  const auto t2 = concat(std::vector<int32_t>(t.begin(), t.begin() + 20), seq_tokens(20, 900));
  compute(bm, 1, t2, 40);
  EXPECT_TRUE(bm.is_cached(full[1]));
  EXPECT_EQ(bm.peek_cached_tokens(concat(std::vector<int32_t>(t.begin(), t.begin() + 32), {1})),
            kBs);
  EXPECT_EQ(bm.peek_cached_tokens(concat(std::vector<int32_t>(t2.begin(), t2.begin() + 32), {1})),
            2 * kBs);
  // Across blocks, to a block boundary: the kept blocks stay cached.
  EXPECT_EQ(bm.truncate(1, 16), 16);
  EXPECT_EQ(table_of(bm, 1), (std::vector<int32_t>{full[0]}));
  EXPECT_TRUE(bm.is_cached(full[0]));
  bm.check_invariants();
  // To 0: every block released; the sequence stays and can grow again.
  EXPECT_EQ(bm.truncate(1, 0), 0);
  EXPECT_TRUE(bm.block_table(1).empty());
  EXPECT_EQ(bm.n_used(), 0);
  EXPECT_EQ(bm.n_free(), 8);
  bm.check_invariants();
  ASSERT_TRUE(bm.reserve(1, 5));
  bm.free_sequence(1);
  bm.check_invariants();
}

TEST(BlockManagerTest, TruncateIntoASharedBlockHandsOutAFreshOne) {
  BlockManager bm(5, kBs, 7);
  const auto a = seq_tokens(3 * kBs + 4, 0);
  bm.add_sequence(1, a);
  compute(bm, 1, a, static_cast<int64_t>(a.size()));  // 4 blocks
  EXPECT_EQ(bm.add_sequence(2, a), 3 * kBs);          // shares 3
  const auto ta = table_of(bm, 1);
  EXPECT_EQ(bm.truncate(2, 40), 2 * kBs) << "valid count rounds down to the replaced block";
  bm.check_invariants();
  const auto tb = table_of(bm, 2);
  ASSERT_EQ(tb.size(), 3u);
  EXPECT_EQ(tb[1], ta[1]);
  EXPECT_NE(tb[2], ta[2]);
  EXPECT_EQ(bm.ref_count(ta[2]), 1);
  EXPECT_TRUE(bm.is_cached(ta[2])) << "the other holder's block is untouched";
  EXPECT_FALSE(bm.is_cached(tb[2]));
  EXPECT_EQ(bm.n_committed(2), 2 * kBs);
  EXPECT_EQ(bm.n_free(), 0);
  // No block free: a shared tail is dropped from the table instead.
  bm.free_sequence(2);
  EXPECT_EQ(bm.add_sequence(3, a), 3 * kBs);
  bm.add_sequence(4, seq_tokens(3, 900));
  ASSERT_TRUE(bm.reserve(4, 3));
  EXPECT_EQ(bm.n_free(), 0);
  EXPECT_EQ(bm.truncate(3, 20), kBs);
  bm.check_invariants();
  EXPECT_EQ(table_of(bm, 3), (std::vector<int32_t>{ta[0]}));
  EXPECT_EQ(bm.n_tokens_capacity(3), kBs);
  EXPECT_EQ(bm.n_committed(3), kBs);
  EXPECT_EQ(bm.ref_count(ta[1]), 1);
  EXPECT_EQ(bm.ref_count(ta[2]), 1);
  EXPECT_EQ(bm.n_free(), 0);
  EXPECT_FALSE(bm.reserve(3, 17));
  bm.free_sequence(4);
  bm.free_sequence(3);
  bm.free_sequence(1);
  bm.check_invariants();
  EXPECT_EQ(bm.n_free(), 5);
}

TEST(BlockManagerTest, ForkSharesFullBlocksButNotThePartialOne) {
  BlockManager bm(6, kBs, 7);
  const auto p = seq_tokens(2 * kBs + 5, 0);
  bm.add_sequence(1, p);
  compute(bm, 1, p, static_cast<int64_t>(p.size()));
  const auto tp = table_of(bm, 1);
  const auto valid = bm.fork(1, 2);
  ASSERT_TRUE(valid.has_value());
  EXPECT_EQ(*valid, 2 * kBs) << "the child recomputes (or copies) positions 32..36";
  bm.check_invariants();
  const auto tc = table_of(bm, 2);
  ASSERT_EQ(tc.size(), 3u);
  EXPECT_EQ(tc[0], tp[0]);
  EXPECT_EQ(tc[1], tp[1]);
  EXPECT_NE(tc[2], tp[2]);
  EXPECT_EQ(bm.ref_count(tp[0]), 2);
  EXPECT_EQ(bm.ref_count(tp[2]), 1);
  EXPECT_EQ(bm.n_committed(2), 2 * kBs);
  compute(bm, 2, p, static_cast<int64_t>(p.size()));
  // A parent at a block boundary shares everything; nothing to recompute.
  const auto w = seq_tokens(2 * kBs, 500);
  bm.add_sequence(3, w);
  compute(bm, 3, w, 2 * kBs);
  EXPECT_EQ(bm.fork(3, 4), 2 * kBs);
  EXPECT_EQ(table_of(bm, 4), table_of(bm, 3));
  bm.check_invariants();
  // Pool full: a fork that needs a fresh block fails and changes nothing.
  EXPECT_EQ(bm.n_free(), 0);
  EXPECT_FALSE(bm.fork(1, 5).has_value());
  EXPECT_FALSE(bm.contains(5));
  EXPECT_EQ(bm.ref_count(tp[0]), 2);
  bm.check_invariants();
  // Freeing the parent keeps the child's shared blocks alive.
  bm.free_sequence(1);
  EXPECT_EQ(bm.ref_count(tp[0]), 1);
  bm.check_invariants();
  for (SeqId s : {2, 3, 4}) bm.free_sequence(s);
  bm.check_invariants();
  EXPECT_EQ(bm.n_used(), 0);
  EXPECT_EQ(bm.n_free(), 6);
}

TEST(BlockManagerTest, ForkWithoutPrefixCacheStillRefCounts) {
  BlockManager bm(4, kBs, 7, false);
  const auto p = seq_tokens(kBs + 1, 0);
  bm.add_sequence(1, p);
  compute(bm, 1, p, kBs + 1);
  EXPECT_EQ(bm.fork(1, 2), kBs);
  EXPECT_EQ(bm.ref_count(table_of(bm, 1)[0]), 2);
  // Truncating the child into the shared block replaces it rather than writing into it.
  EXPECT_EQ(bm.truncate(2, 8), 0);
  EXPECT_EQ(bm.ref_count(table_of(bm, 1)[0]), 1);
  bm.check_invariants();
  bm.free_sequence(1);
  bm.free_sequence(2);
  EXPECT_EQ(bm.n_free(), 4);
}

// ---- randomized stress ---------------------------------------------------------------------

struct StressConfig {
  const char* name;
  bool prefix_cache;
  BlockHashFn hash;
};

void PrintTo(const StressConfig& c, std::ostream* os) {
  *os << c.name;
}

uint64_t weak_hash(uint64_t parent, std::span<const int32_t> tokens) {
  return (parent + static_cast<uint64_t>(tokens[0])) & 3;  // four keys in all
}

class BlockManagerStressTest : public ::testing::TestWithParam<StressConfig> {};

// The engine's side, simulated: each pool slot holds the token prefix its KV was computed from.
// Whatever the block manager hands out, the KV a sequence holds must be its own prefix's, and a
// slot written must belong to a block held by that sequence alone and not cached.
TEST_P(BlockManagerStressTest, RandomOperationsKeepInvariantsAndServeOnlyCorrectKv) {
  const int64_t bs = 4, n_blocks = 16;
  BlockManager bm(n_blocks, bs, 0x5eed, GetParam().prefix_cache, GetParam().hash);
  std::mt19937 rng(1234);
  const auto uniform = [&](int64_t lo, int64_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  std::vector<std::vector<int32_t>> shared;  // a few common prefixes over a tiny vocabulary
  for (int k = 0; k < 4; ++k) {
    std::vector<int32_t> p(static_cast<size_t>(uniform(2, 14)));
    for (auto& t : p) t = static_cast<int32_t>(uniform(0, 2));
    shared.push_back(p);
  }
  std::vector<std::vector<int32_t>> pool(static_cast<size_t>(n_blocks * bs));
  struct Live {
    std::vector<int32_t> tokens;
    int64_t computed = 0;
  };
  std::map<SeqId, Live> live;
  SeqId next_id = 1;
  int64_t n_hits = 0, n_truncations = 0, n_forks = 0, n_full = 0, n_shared_tails = 0,
          n_evicting = 0;

  const auto slot = [&](SeqId id, int64_t p) {
    return static_cast<size_t>(bm.block_table(id)[static_cast<size_t>(p / bs)] * bs + p % bs);
  };
  const auto check_kv = [&](SeqId id) {
    const Live& s = live.at(id);
    ASSERT_EQ(bm.n_committed(id), s.computed);
    for (int64_t p = 0; p < s.computed; ++p) {
      const std::vector<int32_t> want(s.tokens.begin(), s.tokens.begin() + p + 1);
      ASSERT_EQ(pool[slot(id, p)], want) << "seq " << id << " position " << p;
    }
  };
  const auto pick = [&]() {
    auto it = live.begin();
    std::advance(it, uniform(0, static_cast<int64_t>(live.size()) - 1));
    return it->first;
  };

  for (int op = 0; op < 6000; ++op) {
    const int64_t kind = live.empty() ? 0 : uniform(0, 9);
    if (kind == 0 && live.size() < 10) {  // add
      Live s;
      s.tokens = shared[static_cast<size_t>(uniform(0, 3))];
      for (int64_t i = uniform(0, 9); i > 0; --i)
        s.tokens.push_back(static_cast<int32_t>(uniform(0, 2)));
      if (s.tokens.empty()) s.tokens.push_back(0);
      const SeqId id = next_id++;
      const int64_t peek = bm.peek_cached_tokens(s.tokens);
      s.computed = bm.add_sequence(id, s.tokens);
      ASSERT_EQ(s.computed, peek);
      ASSERT_EQ(s.computed % bs, 0);
      ASSERT_LE(s.computed, static_cast<int64_t>(s.tokens.size()) - 1);
      n_hits += s.computed > 0;
      live[id] = s;
      check_kv(id);
    } else if (kind <= 5) {  // compute a chunk (a decode appends a generated token first)
      const SeqId id = pick();
      Live& s = live[id];
      if (s.computed == static_cast<int64_t>(s.tokens.size())) {
        s.tokens.push_back(static_cast<int32_t>(uniform(0, 2)));
      }
      const int64_t n = uniform(1, static_cast<int64_t>(s.tokens.size()) - s.computed);
      const int64_t before_free = bm.n_free();
      const auto before_table = table_of(bm, id);
      const bool evicts = bm.n_free() - bm.n_evictable() < bm.blocks_needed(id, s.computed + n);
      if (!bm.reserve(id, s.computed + n)) {
        ++n_full;
        ASSERT_EQ(bm.n_free(), before_free);
        ASSERT_EQ(table_of(bm, id), before_table);
        bm.free_sequence(live.begin()->first);  // preempt the oldest
        live.erase(live.begin());
      } else {
        n_evicting += evicts;
        for (int64_t p = s.computed; p < s.computed + n; ++p) {
          const int32_t b = bm.block_table(id)[static_cast<size_t>(p / bs)];
          ASSERT_EQ(bm.ref_count(b), 1) << "writing into a shared block";
          ASSERT_FALSE(bm.is_cached(b)) << "writing into a cached block";
          pool[slot(id, p)].assign(s.tokens.begin(), s.tokens.begin() + p + 1);
        }
        s.computed += n;
        bm.commit(id, s.tokens, s.computed);
        ASSERT_LE(s.computed, bm.n_tokens_capacity(id));
        check_kv(id);
      }
    } else if (kind == 6) {  // truncate (rollback), then diverge
      const SeqId id = pick();
      Live& s = live[id];
      const int64_t n = uniform(
          0, std::min<int64_t>(bm.n_tokens_capacity(id), static_cast<int64_t>(s.tokens.size())));
      const bool shared_tail =
          n % bs != 0 && bm.ref_count(bm.block_table(id)[static_cast<size_t>(n / bs)]) > 1;
      const int64_t valid = bm.truncate(id, n);
      const int64_t expect =
          shared_tail ? std::min(s.computed, n / bs * bs) : std::min(s.computed, n);
      ASSERT_EQ(valid, expect) << "n " << n;
      s.computed = valid;
      s.tokens.resize(static_cast<size_t>(n));
      for (int64_t i = uniform(0, 3); i > 0; --i)
        s.tokens.push_back(static_cast<int32_t>(uniform(0, 2)));
      if (s.tokens.empty()) s.tokens.push_back(1);
      ++n_truncations;
      n_shared_tails += shared_tail;
      check_kv(id);
    } else if (kind == 7 && live.size() < 10) {  // fork
      const SeqId parent = pick();
      const SeqId child = next_id++;
      const auto r = bm.fork(parent, child);
      if (r) {
        ASSERT_EQ(*r, live[parent].computed / bs * bs);
        live[child] = Live{live[parent].tokens, *r};
        ++n_forks;
        check_kv(child);
      } else {
        ASSERT_FALSE(bm.contains(child));
      }
    } else if (kind == 8) {  // finish
      const SeqId id = pick();
      bm.free_sequence(id);
      live.erase(id);
    } else if (kind == 9 && uniform(0, 20) == 0) {
      bm.reset_prefix_cache();
    }
    bm.check_invariants();
    ASSERT_EQ(bm.n_free() + bm.n_used(), n_blocks);
    ASSERT_LE(bm.prefix_hit_tokens(), bm.prefix_queried_tokens());
  }
  for (const auto& [id, s] : live) bm.free_sequence(id);
  bm.check_invariants();
  EXPECT_EQ(bm.n_used(), 0);
  EXPECT_EQ(bm.n_free(), n_blocks);
  bm.reset_prefix_cache();
  EXPECT_EQ(bm.n_cached(), 0);
  bm.check_invariants();
  // The run did exercise what it claims to.
  EXPECT_GT(n_truncations, 100);
  EXPECT_GT(n_forks, 50);
  EXPECT_GT(n_full, 20);
  EXPECT_GT(n_shared_tails, 10);
  std::printf(
      "%s: %lld prefix hits, %lld truncations (%lld into shared blocks), %lld forks, "
      "%lld full-pool reserves, %lld reserves that evicted\n",
      GetParam().name, static_cast<long long>(n_hits), static_cast<long long>(n_truncations),
      static_cast<long long>(n_shared_tails), static_cast<long long>(n_forks),
      static_cast<long long>(n_full), static_cast<long long>(n_evicting));
  if (GetParam().prefix_cache) {
    EXPECT_GT(n_hits, 50);
    EXPECT_GT(n_evicting, 20);
  } else {
    EXPECT_EQ(n_hits, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, BlockManagerStressTest,
                         ::testing::Values(StressConfig{"xxh3", true, nullptr},
                                           StressConfig{"weak_hash", true, weak_hash},
                                           StressConfig{"no_cache", false, nullptr}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace shardlm
