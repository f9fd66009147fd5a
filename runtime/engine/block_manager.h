// The driver-side bookkeeping of the paged KV pool (model/kv_pool.h): which of the n_blocks
// blocks of block_size token slots each sequence holds, in position order (its block table:
// position p lives in block table[p / block_size] at offset p % block_size), with reference
// counts so that blocks can be shared, and a prefix cache so that sequences starting with the
// same tokens reuse the same computed blocks (vLLM v1's KVCacheManager / BlockPool idea).
//
// Block states: every block is exactly one of
//   free       ref 0, not cached: in the plain free list;
//   evictable  ref 0, cached: its KV is kept for later prefix hits, in an LRU list;
//   in use     ref > 0 (held by that many block-table entries), cached or not.
// A fresh block comes from the free list first, then from the least recently used evictable
// block (whose cache entry is dropped). Blocks freed by a sequence enter the LRU tail first, so a
// prefix's first blocks (the most shared) are evicted last.
//
// Prefix cache: a full, computed block gets the chained key
//   key(i) = hash(key(i - 1), its block_size token ids),  key(-1) = salt (the pack id),
// xxh3 by default. The key only finds candidates: a hit needs the candidate's stored token ids to
// equal the block's and its stored parent to be the very cache entry matched for block i - 1
// (every registration gets a unique serial, never reused), so a hash collision, even on the
// whole chain, can never return KV computed for other tokens.
//
// Not the KV memory, not the scheduler (scheduler.h) and not thread safe: one driver thread owns
// it. Knows nothing of backends, tensors or models, only block ids and token ids. Misuse at the
// API (unknown or duplicate sequence id, counts out of range) throws Error(kInvalidArg) naming the
// sequence and the numbers; running out of blocks is a `false` / nullopt, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace shardlm {

using SeqId = uint64_t;

// Key of a full block from its parent's key and its block_size token ids. Injectable for tests
// (a deliberately colliding hash); nullptr selects xxh3 (XXH3_64bits_withSeed, parent as seed).
using BlockHashFn = uint64_t (*)(uint64_t parent_key, std::span<const int32_t> tokens);

class BlockManager {
 public:
  // n_blocks >= 0 blocks of block_size > 0 token slots. `salt` seeds every key chain (use the
  // pack id, so two models never share keys); prefix_cache = false turns caching off entirely.
  BlockManager(int64_t n_blocks, int64_t block_size, uint64_t salt, bool prefix_cache = true,
               BlockHashFn hash = nullptr);

  int64_t n_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t block_size() const { return block_size_; }
  bool prefix_cache_enabled() const { return prefix_cache_; }

  // Blocks a fresh allocation can take: plain free + evictable cached.
  int64_t n_free() const { return static_cast<int64_t>(free_list_.size()) + n_evictable_; }
  int64_t n_used() const { return n_used_; }            // blocks with ref > 0
  int64_t n_cached() const { return n_cached_; }        // blocks in the prefix cache (any ref)
  int64_t n_evictable() const { return n_evictable_; }  // cached with ref 0
  int64_t n_sequences() const { return static_cast<int64_t>(seqs_.size()); }
  bool contains(SeqId seq) const { return seqs_.count(seq) != 0; }

  // Cumulative prefix-cache counters over add_sequence calls with caching on: prompt tokens
  // looked up, and tokens served from the cache.
  int64_t prefix_queried_tokens() const { return queried_tokens_; }
  int64_t prefix_hit_tokens() const { return hit_tokens_; }

  // Registers a new sequence whose first tokens are `tokens` (prompt, or prompt + generated
  // after a preemption) and gives it the longest cached prefix of them: at most
  // (tokens.size() - 1) / block_size full blocks, so at least one token is left to compute.
  // Returns the number of positions served from the cache (a multiple of block_size); the
  // sequence's KV is valid up to there. Throws kInvalidArg if `seq` is already present.
  int64_t add_sequence(SeqId seq, std::span<const int32_t> tokens);

  // Positions [0, n_cached) that add_sequence would serve now; no side effect, no counters.
  int64_t peek_cached_tokens(std::span<const int32_t> tokens) const;
  // Blocks the free pool (n_free) would lose if a sequence with `tokens` were added and reserved
  // to n_tokens_total now: fresh blocks beyond the hits, plus the hits that are evictable.
  int64_t blocks_needed_new(std::span<const int32_t> tokens, int64_t n_tokens_total) const;
  bool can_add(std::span<const int32_t> tokens, int64_t n_tokens_total) const {
    return blocks_needed_new(tokens, n_tokens_total) <= n_free();
  }

  // Grows the table of `seq` to hold n_tokens_total positions (never shrinks it). When fewer
  // blocks are free than needed, changes nothing and returns false.
  bool reserve(SeqId seq, int64_t n_tokens_total);
  // Fresh blocks reserve(seq, n_tokens_total) would take (0 when the table is long enough).
  int64_t blocks_needed(SeqId seq, int64_t n_tokens_total) const;
  bool can_reserve(SeqId seq, int64_t n_tokens_total) const {
    return blocks_needed(seq, n_tokens_total) <= n_free();
  }

  // The engine wrote the KV of positions [0, n_computed) of `seq`, whose token ids are
  // tokens[0, n_computed). Every block that became full enters the prefix cache (unless an
  // identical block is cached already: then this one stays uncached). n_computed may not go
  // below the previous commit (truncate for that) nor past the table's capacity.
  void commit(SeqId seq, std::span<const int32_t> tokens, int64_t n_computed);

  // Keeps positions [0, n_tokens), 0 <= n_tokens <= n_tokens_capacity(seq); releases the blocks
  // wholly past it. The block holding the new partial tail is about to be rewritten: if cached and
  // held only here it leaves the cache; if shared (ref > 1) it is replaced by a fresh block, or
  // dropped from the table when none is free. Returns the positions whose KV is still valid:
  // min(committed, n_tokens), rounded down to a block boundary when the tail was replaced or
  // dropped (the caller recomputes from there and may need to reserve again).
  int64_t truncate(SeqId seq, int64_t n_tokens);

  // A new sequence `child` sharing the computed full blocks of `parent` (refs incremented). The
  // parent's partially filled last computed block is not shared: the child gets a fresh block in
  // its place. Returns the child's valid positions, the parent's committed count rounded down to
  // block_size; the caller recomputes positions [returned, parent's committed) for the child (or
  // copies them from the parent's block). Reserved but uncomputed parent blocks are not mirrored.
  // Returns nullopt and changes nothing when the fresh block is needed and none is free.
  std::optional<int64_t> fork(SeqId parent, SeqId child);

  // Releases every block of `seq` (tail first) and forgets it.
  void free_sequence(SeqId seq);

  // Drops every cache entry whose block nobody holds (they join the free list). Entries of
  // blocks in use stay. Returns the number dropped.
  int64_t reset_prefix_cache();

  // The table of `seq`; valid until the next call that changes this sequence.
  std::span<const int32_t> block_table(SeqId seq) const;
  int64_t n_tokens_capacity(SeqId seq) const;
  int64_t n_committed(SeqId seq) const;  // positions whose KV the sequence holds
  int32_t ref_count(int32_t block) const;
  bool is_cached(int32_t block) const;
  std::optional<uint64_t> block_key(int32_t block) const;  // chained key; nullopt if not cached

  // Debug helper (tests): throws Error(kInternal) describing the first broken invariant: each
  // block in exactly one of {free list, LRU, in use}; refs == table entries referencing the
  // block; cache map entries point at cached blocks whose stored key matches and rehashes.
  void check_invariants() const;

 private:
  enum class State : uint8_t { kFree, kEvictable, kInUse };
  struct Block {
    int32_t ref = 0;
    State state = State::kFree;
    bool cached = false;
    uint64_t key = 0;                      // chained key (valid when cached)
    uint64_t parent_key = 0;               // key of the parent entry (the salt for the first block)
    uint64_t serial = 0;                   // unique id of this cache registration (0 = none)
    uint64_t parent_serial = 0;            // serial of the parent entry (0 for the first block)
    int32_t lru_prev = -1, lru_next = -1;  // intrusive LRU links while evictable
  };
  // One full computed block of a sequence, as the prefix chain sees it: its key and the serial of
  // the cache entry holding its content (its own block's or an identical block's).
  struct ChainLink {
    uint64_t key;
    uint64_t serial;
  };
  struct Sequence {
    std::vector<int32_t> table;
    int64_t n_committed = 0;
    std::vector<ChainLink> chain;  // with caching on: one per full committed block
  };

  Sequence& find(SeqId seq, const char* what);
  const Sequence& find(SeqId seq, const char* what) const;
  uint64_t hash_block(uint64_t parent_key, std::span<const int32_t> tokens) const;
  std::span<const int32_t> stored_tokens(int32_t block) const;
  // The cached block with this key, token ids and parent serial; -1 when none.
  int32_t lookup(uint64_t key, std::span<const int32_t> tokens, uint64_t parent_serial) const;
  // Longest cached prefix of `tokens` (at most (size - 1) / block_size blocks).
  void match_prefix(std::span<const int32_t> tokens, std::vector<int32_t>& hits,
                    std::vector<ChainLink>& links) const;
  int32_t take_fresh();         // a block with ref 1 from the free list or the LRU head
  void acquire(int32_t block);  // ref++ (an evictable block leaves the LRU)
  void release(int32_t block);  // ref--; at 0 to the LRU tail if cached, else the free list
  void register_block(int32_t block, uint64_t key, uint64_t parent_key, uint64_t parent_serial,
                      std::span<const int32_t> tokens);
  void unregister(int32_t block);
  void lru_push_back(int32_t block);
  void lru_remove(int32_t block);

  int64_t block_size_;
  uint64_t salt_;
  bool prefix_cache_;
  BlockHashFn hash_;
  std::vector<Block> blocks_;
  std::vector<int32_t> tokens_;            // [n_blocks * block_size] token ids of cached blocks
  std::vector<int32_t> free_list_;         // stack; back is handed out first
  int32_t lru_head_ = -1, lru_tail_ = -1;  // head = least recently used
  int64_t n_evictable_ = 0, n_used_ = 0, n_cached_ = 0;
  uint64_t next_serial_ = 1;
  std::unordered_multimap<uint64_t, int32_t> cache_;  // key -> cached block
  std::unordered_map<SeqId, Sequence> seqs_;
  int64_t queried_tokens_ = 0, hit_tokens_ = 0;
};

}  // namespace shardlm
