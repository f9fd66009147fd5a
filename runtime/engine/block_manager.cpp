// BlockManager: free list + intrusive LRU of evictable cached blocks, chained-key prefix cache
// confirmed by token ids and parent serial, per-sequence block tables.
#include "runtime/engine/block_manager.h"

#include <xxhash.h>

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_set>

#include "runtime/core/status.h"

namespace shardlm {

namespace {

std::string seq_name(SeqId seq) {
  return "sequence " + std::to_string(seq);
}

[[noreturn]] void broken(const std::string& what) {
  fail(StatusCode::kInternal, "block manager invariant broken: " + what);
}

}  // namespace

BlockManager::BlockManager(int64_t n_blocks, int64_t block_size, uint64_t salt, bool prefix_cache,
                           BlockHashFn hash)
    : block_size_(block_size), salt_(salt), prefix_cache_(prefix_cache), hash_(hash) {
  if (n_blocks < 0 || n_blocks > std::numeric_limits<int32_t>::max()) {
    fail(StatusCode::kInvalidArg,
         "block manager: n_blocks (" + std::to_string(n_blocks) + ") must be in [0, 2^31 - 1]");
  }
  if (block_size <= 0 || block_size > (int64_t{1} << 20)) {
    fail(StatusCode::kInvalidArg,
         "block manager: block_size (" + std::to_string(block_size) + ") must be in [1, 2^20]");
  }
  blocks_.resize(static_cast<size_t>(n_blocks));
  if (prefix_cache_) tokens_.resize(static_cast<size_t>(n_blocks * block_size));
  free_list_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_list_.push_back(static_cast<int32_t>(b));
}

// ---- lookups -------------------------------------------------------------------------------

BlockManager::Sequence& BlockManager::find(SeqId seq, const char* what) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) {
    fail(StatusCode::kInvalidArg, std::string("block manager: ") + what + ": unknown " +
                                      seq_name(seq) + " (add_sequence or fork it first)");
  }
  return it->second;
}

const BlockManager::Sequence& BlockManager::find(SeqId seq, const char* what) const {
  return const_cast<BlockManager*>(this)->find(seq, what);
}

uint64_t BlockManager::hash_block(uint64_t parent_key, std::span<const int32_t> tokens) const {
  if (hash_ != nullptr) return hash_(parent_key, tokens);
  return XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent_key);
}

std::span<const int32_t> BlockManager::stored_tokens(int32_t block) const {
  return std::span<const int32_t>(tokens_).subspan(
      static_cast<size_t>(block) * static_cast<size_t>(block_size_),
      static_cast<size_t>(block_size_));
}

int32_t BlockManager::lookup(uint64_t key, std::span<const int32_t> tokens,
                             uint64_t parent_serial) const {
  auto [first, last] = cache_.equal_range(key);
  for (auto it = first; it != last; ++it) {
    const int32_t b = it->second;
    if (blocks_[static_cast<size_t>(b)].parent_serial != parent_serial) continue;
    const std::span<const int32_t> stored = stored_tokens(b);
    if (std::equal(stored.begin(), stored.end(), tokens.begin(), tokens.end())) return b;
  }
  return -1;
}

void BlockManager::match_prefix(std::span<const int32_t> tokens, std::vector<int32_t>& hits,
                                std::vector<ChainLink>& links) const {
  if (!prefix_cache_ || tokens.empty()) return;
  const size_t bs = static_cast<size_t>(block_size_);
  const size_t max_blocks = (tokens.size() - 1) / bs;
  uint64_t parent_key = salt_, parent_serial = 0;
  for (size_t i = 0; i < max_blocks; ++i) {
    const std::span<const int32_t> block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t key = hash_block(parent_key, block_tokens);
    const int32_t b = lookup(key, block_tokens, parent_serial);
    if (b < 0) break;
    hits.push_back(b);
    parent_key = key;
    parent_serial = blocks_[static_cast<size_t>(b)].serial;
    links.push_back({key, parent_serial});
  }
}

// ---- block states --------------------------------------------------------------------------

void BlockManager::lru_push_back(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  b.lru_prev = lru_tail_;
  b.lru_next = -1;
  if (lru_tail_ >= 0) {
    blocks_[static_cast<size_t>(lru_tail_)].lru_next = block;
  } else {
    lru_head_ = block;
  }
  lru_tail_ = block;
  b.state = State::kEvictable;
  ++n_evictable_;
}

void BlockManager::lru_remove(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  if (b.lru_prev >= 0) {
    blocks_[static_cast<size_t>(b.lru_prev)].lru_next = b.lru_next;
  } else {
    lru_head_ = b.lru_next;
  }
  if (b.lru_next >= 0) {
    blocks_[static_cast<size_t>(b.lru_next)].lru_prev = b.lru_prev;
  } else {
    lru_tail_ = b.lru_prev;
  }
  b.lru_prev = b.lru_next = -1;
  --n_evictable_;
}

void BlockManager::register_block(int32_t block, uint64_t key, uint64_t parent_key,
                                  uint64_t parent_serial, std::span<const int32_t> tokens) {
  Block& b = blocks_[static_cast<size_t>(block)];
  b.cached = true;
  b.key = key;
  b.parent_key = parent_key;
  b.serial = next_serial_++;
  b.parent_serial = parent_serial;
  std::copy(tokens.begin(), tokens.end(),
            tokens_.begin() + static_cast<ptrdiff_t>(block) * block_size_);
  cache_.emplace(key, block);
  ++n_cached_;
}

void BlockManager::unregister(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  auto [first, last] = cache_.equal_range(b.key);
  auto it = std::find_if(first, last, [&](const auto& entry) { return entry.second == block; });
  if (it == last) broken("cached block " + std::to_string(block) + " has no cache entry");
  cache_.erase(it);
  b.cached = false;
  b.serial = 0;
  --n_cached_;
}

int32_t BlockManager::take_fresh() {
  int32_t block;
  if (!free_list_.empty()) {
    block = free_list_.back();
    free_list_.pop_back();
  } else if (lru_head_ >= 0) {
    block = lru_head_;
    lru_remove(block);
    unregister(block);
  } else {
    broken("take_fresh with no free block (n_free " + std::to_string(n_free()) + ")");
  }
  Block& b = blocks_[static_cast<size_t>(block)];
  b.ref = 1;
  b.state = State::kInUse;
  ++n_used_;
  return block;
}

void BlockManager::acquire(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  if (b.ref == 0) {
    if (b.state != State::kEvictable) {
      broken("acquire of block " + std::to_string(block) + " that is neither cached nor in use");
    }
    lru_remove(block);
    b.state = State::kInUse;
    ++n_used_;
  }
  ++b.ref;
}

void BlockManager::release(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  if (b.ref <= 0) broken("release of block " + std::to_string(block) + " with ref 0");
  if (--b.ref > 0) return;
  --n_used_;
  if (b.cached) {
    lru_push_back(block);
  } else {
    b.state = State::kFree;
    free_list_.push_back(block);
  }
}

// ---- sequences -----------------------------------------------------------------------------

int64_t BlockManager::add_sequence(SeqId seq, std::span<const int32_t> tokens) {
  if (contains(seq)) {
    fail(StatusCode::kInvalidArg, "block manager: add_sequence: " + seq_name(seq) +
                                      " is already present (free_sequence it first)");
  }
  Sequence s;
  match_prefix(tokens, s.table, s.chain);
  for (int32_t b : s.table) acquire(b);
  const int64_t n_cached = static_cast<int64_t>(s.table.size()) * block_size_;
  s.n_committed = n_cached;
  if (prefix_cache_) {
    queried_tokens_ += static_cast<int64_t>(tokens.size());
    hit_tokens_ += n_cached;
  }
  seqs_.emplace(seq, std::move(s));
  return n_cached;
}

int64_t BlockManager::peek_cached_tokens(std::span<const int32_t> tokens) const {
  std::vector<int32_t> hits;
  std::vector<ChainLink> links;
  match_prefix(tokens, hits, links);
  return static_cast<int64_t>(hits.size()) * block_size_;
}

int64_t BlockManager::blocks_needed_new(std::span<const int32_t> tokens,
                                        int64_t n_tokens_total) const {
  if (n_tokens_total < 0) {
    fail(StatusCode::kInvalidArg, "block manager: blocks_needed_new: n_tokens_total (" +
                                      std::to_string(n_tokens_total) + ") must be >= 0");
  }
  std::vector<int32_t> hits;
  std::vector<ChainLink> links;
  match_prefix(tokens, hits, links);
  const int64_t n_hits = static_cast<int64_t>(hits.size());
  const int64_t evictable_hits = std::count_if(hits.begin(), hits.end(), [&](int32_t b) {
    return blocks_[static_cast<size_t>(b)].state == State::kEvictable;
  });
  const int64_t total = (n_tokens_total + block_size_ - 1) / block_size_;
  return std::max<int64_t>(0, total - n_hits) + evictable_hits;
}

int64_t BlockManager::blocks_needed(SeqId seq, int64_t n_tokens_total) const {
  const Sequence& s = find(seq, "blocks_needed");
  if (n_tokens_total < 0) {
    fail(StatusCode::kInvalidArg, "block manager: blocks_needed: n_tokens_total (" +
                                      std::to_string(n_tokens_total) + ") of " + seq_name(seq) +
                                      " must be >= 0");
  }
  const int64_t total = (n_tokens_total + block_size_ - 1) / block_size_;
  return std::max<int64_t>(0, total - static_cast<int64_t>(s.table.size()));
}

bool BlockManager::reserve(SeqId seq, int64_t n_tokens_total) {
  if (n_tokens_total < 0) {
    fail(StatusCode::kInvalidArg, "block manager: reserve: n_tokens_total (" +
                                      std::to_string(n_tokens_total) + ") of " + seq_name(seq) +
                                      " must be >= 0");
  }
  Sequence& s = find(seq, "reserve");
  const int64_t total = (n_tokens_total + block_size_ - 1) / block_size_;
  const int64_t need = std::max<int64_t>(0, total - static_cast<int64_t>(s.table.size()));
  if (need > n_free()) return false;
  for (int64_t i = 0; i < need; ++i) s.table.push_back(take_fresh());
  return true;
}

void BlockManager::commit(SeqId seq, std::span<const int32_t> tokens, int64_t n_computed) {
  Sequence& s = find(seq, "commit");
  const int64_t capacity = static_cast<int64_t>(s.table.size()) * block_size_;
  if (n_computed < s.n_committed || n_computed > capacity ||
      n_computed > static_cast<int64_t>(tokens.size())) {
    fail(StatusCode::kInvalidArg,
         "block manager: commit: n_computed " + std::to_string(n_computed) + " of " +
             seq_name(seq) + " must be within [" + std::to_string(s.n_committed) +
             " (committed before; truncate to go back), min(" + std::to_string(capacity) +
             " (reserved), " + std::to_string(tokens.size()) + " (tokens given))]");
  }
  s.n_committed = n_computed;
  if (!prefix_cache_) return;
  const size_t bs = static_cast<size_t>(block_size_);
  const size_t n_full = static_cast<size_t>(n_computed) / bs;
  for (size_t i = s.chain.size(); i < n_full; ++i) {
    const uint64_t parent_key = i == 0 ? salt_ : s.chain[i - 1].key;
    const uint64_t parent_serial = i == 0 ? 0 : s.chain[i - 1].serial;
    const std::span<const int32_t> block_tokens = tokens.subspan(i * bs, bs);
    const uint64_t key = hash_block(parent_key, block_tokens);
    const int32_t block = s.table[i];
    const int32_t existing = lookup(key, block_tokens, parent_serial);
    if (existing >= 0) {  // this block itself (a hit), or an identical one: leave this uncached
      s.chain.push_back({key, blocks_[static_cast<size_t>(existing)].serial});
      continue;
    }
    if (blocks_[static_cast<size_t>(block)].cached) {
      broken("block " + std::to_string(block) + " at index " + std::to_string(i) + " of " +
             seq_name(seq) + " is cached for other tokens");
    }
    register_block(block, key, parent_key, parent_serial, block_tokens);
    s.chain.push_back({key, blocks_[static_cast<size_t>(block)].serial});
  }
}

int64_t BlockManager::truncate(SeqId seq, int64_t n_tokens) {
  Sequence& s = find(seq, "truncate");
  const int64_t capacity = static_cast<int64_t>(s.table.size()) * block_size_;
  if (n_tokens < 0 || n_tokens > capacity) {
    fail(StatusCode::kInvalidArg, "block manager: truncate: n_tokens " + std::to_string(n_tokens) +
                                      " of " + seq_name(seq) + " must be within [0, " +
                                      std::to_string(capacity) + "] (its reserved capacity)");
  }
  const size_t keep = static_cast<size_t>((n_tokens + block_size_ - 1) / block_size_);
  while (s.table.size() > keep) {
    release(s.table.back());
    s.table.pop_back();
  }
  int64_t valid = std::min(s.n_committed, n_tokens);
  if (n_tokens % block_size_ != 0) {
    // The tail block keeps positions [tail * block_size, n_tokens) and will be rewritten past them.
    const size_t tail = keep - 1;
    const int32_t block = s.table[tail];
    if (blocks_[static_cast<size_t>(block)].ref > 1) {
      release(block);
      if (n_free() > 0) {
        s.table[tail] = take_fresh();
      } else {
        s.table.pop_back();
      }
      valid = std::min(valid, static_cast<int64_t>(tail) * block_size_);
    } else if (blocks_[static_cast<size_t>(block)].cached) {
      unregister(block);
    }
  }
  s.n_committed = valid;
  s.chain.resize(std::min(s.chain.size(), static_cast<size_t>(valid / block_size_)));
  return valid;
}

std::optional<int64_t> BlockManager::fork(SeqId parent, SeqId child) {
  const Sequence& p = find(parent, "fork (parent)");
  if (contains(child)) {
    fail(StatusCode::kInvalidArg, "block manager: fork: child " + seq_name(child) + " of parent " +
                                      seq_name(parent) + " is already present");
  }
  const size_t n_full = static_cast<size_t>(p.n_committed / block_size_);
  const bool partial = p.n_committed % block_size_ != 0;
  if (partial && n_free() == 0) return std::nullopt;
  Sequence c;
  c.table.assign(p.table.begin(), p.table.begin() + static_cast<ptrdiff_t>(n_full));
  c.chain.assign(p.chain.begin(),
                 p.chain.begin() + static_cast<ptrdiff_t>(std::min(n_full, p.chain.size())));
  c.n_committed = static_cast<int64_t>(n_full) * block_size_;
  for (int32_t b : c.table) acquire(b);
  if (partial) c.table.push_back(take_fresh());
  const int64_t valid = c.n_committed;
  seqs_.emplace(child, std::move(c));  // may rehash: `p` is not used past here
  return valid;
}

void BlockManager::free_sequence(SeqId seq) {
  Sequence& s = find(seq, "free_sequence");
  // Tail first: the LRU then evicts a prefix's last blocks before its first ones.
  for (auto it = s.table.rbegin(); it != s.table.rend(); ++it) release(*it);
  seqs_.erase(seq);
}

int64_t BlockManager::reset_prefix_cache() {
  int64_t dropped = 0;
  while (lru_head_ >= 0) {
    const int32_t block = lru_head_;
    lru_remove(block);
    unregister(block);
    blocks_[static_cast<size_t>(block)].state = State::kFree;
    free_list_.push_back(block);
    ++dropped;
  }
  return dropped;
}

// ---- queries -------------------------------------------------------------------------------

std::span<const int32_t> BlockManager::block_table(SeqId seq) const {
  return find(seq, "block_table").table;
}

int64_t BlockManager::n_tokens_capacity(SeqId seq) const {
  return static_cast<int64_t>(find(seq, "n_tokens_capacity").table.size()) * block_size_;
}

int64_t BlockManager::n_committed(SeqId seq) const {
  return find(seq, "n_committed").n_committed;
}

int32_t BlockManager::ref_count(int32_t block) const {
  if (block < 0 || block >= n_blocks()) {
    fail(StatusCode::kInvalidArg, "block manager: ref_count: block " + std::to_string(block) +
                                      " outside [0, " + std::to_string(n_blocks()) + ")");
  }
  return blocks_[static_cast<size_t>(block)].ref;
}

bool BlockManager::is_cached(int32_t block) const {
  if (block < 0 || block >= n_blocks()) {
    fail(StatusCode::kInvalidArg, "block manager: is_cached: block " + std::to_string(block) +
                                      " outside [0, " + std::to_string(n_blocks()) + ")");
  }
  return blocks_[static_cast<size_t>(block)].cached;
}

std::optional<uint64_t> BlockManager::block_key(int32_t block) const {
  if (!is_cached(block)) return std::nullopt;
  return blocks_[static_cast<size_t>(block)].key;
}

void BlockManager::check_invariants() const {
  const size_t n = blocks_.size();
  const auto name = [](size_t b) { return "block " + std::to_string(b); };

  // References from the block tables; per-sequence rules.
  std::vector<int32_t> refs(n, 0);
  std::vector<SeqId> seen_in(n, 0);
  std::vector<bool> seen_any(n, false);
  for (const auto& [id, s] : seqs_) {
    const int64_t capacity = static_cast<int64_t>(s.table.size()) * block_size_;
    if (s.n_committed < 0 || s.n_committed > capacity) {
      broken(seq_name(id) + " committed " + std::to_string(s.n_committed) + " of capacity " +
             std::to_string(capacity));
    }
    const size_t n_full = static_cast<size_t>(s.n_committed / block_size_);
    if (prefix_cache_ ? s.chain.size() != n_full : !s.chain.empty()) {
      broken(seq_name(id) + " has " + std::to_string(s.chain.size()) + " chain links for " +
             std::to_string(n_full) + " full committed blocks");
    }
    for (size_t i = 0; i < s.table.size(); ++i) {
      const int32_t b = s.table[i];
      if (b < 0 || static_cast<size_t>(b) >= n) {
        broken(seq_name(id) + " table[" + std::to_string(i) + "] = " + std::to_string(b));
      }
      const size_t bu = static_cast<size_t>(b);
      if (seen_any[bu] && seen_in[bu] == id) {
        broken(name(bu) + " twice in the table of " + seq_name(id));
      }
      seen_any[bu] = true;
      seen_in[bu] = id;
      ++refs[bu];
      const Block& blk = blocks_[bu];
      if (i < s.chain.size()) {
        if (blk.cached && (blk.serial != s.chain[i].serial || blk.key != s.chain[i].key)) {
          broken(name(bu) + " at index " + std::to_string(i) + " of " + seq_name(id) +
                 " is cached under another identity than the sequence's chain");
        }
      } else if (blk.cached) {
        broken(name(bu) + " at index " + std::to_string(i) + " of " + seq_name(id) +
               " is cached but not a full committed block");
      }
    }
  }
  // A block a sequence may still write (not full and committed) must be its alone. Checked after
  // counting every table.
  for (const auto& [id, s] : seqs_) {
    for (size_t i = static_cast<size_t>(s.n_committed / block_size_); i < s.table.size(); ++i) {
      if (refs[static_cast<size_t>(s.table[i])] != 1) {
        broken("writable " + name(static_cast<size_t>(s.table[i])) + " at index " +
               std::to_string(i) + " of " + seq_name(id) + " is shared");
      }
    }
  }

  // States, refs and counters.
  int64_t used = 0, cached = 0, n_free_state = 0, n_evictable_state = 0;
  for (size_t b = 0; b < n; ++b) {
    const Block& blk = blocks_[b];
    if (blk.ref != refs[b]) {
      broken(name(b) + " has ref " + std::to_string(blk.ref) + " but " + std::to_string(refs[b]) +
             " table entries");
    }
    const State want = blk.ref > 0 ? State::kInUse : blk.cached ? State::kEvictable : State::kFree;
    if (blk.state != want) broken(name(b) + " is in the wrong state for its ref and cache flag");
    used += blk.ref > 0;
    cached += blk.cached;
    n_free_state += blk.state == State::kFree;
    n_evictable_state += blk.state == State::kEvictable;
  }
  if (used != n_used_ || cached != n_cached_) {
    broken("counters n_used " + std::to_string(n_used_) + " / n_cached " +
           std::to_string(n_cached_) + " but counted " + std::to_string(used) + " / " +
           std::to_string(cached));
  }
  if (!prefix_cache_ && cached != 0) broken("cached blocks with the prefix cache off");

  // The free list holds exactly the free blocks, once each.
  std::vector<bool> in_free(n, false);
  for (int32_t b : free_list_) {
    if (b < 0 || static_cast<size_t>(b) >= n) broken("free list entry " + std::to_string(b));
    if (in_free[static_cast<size_t>(b)])
      broken(name(static_cast<size_t>(b)) + " twice in free list");
    in_free[static_cast<size_t>(b)] = true;
    if (blocks_[static_cast<size_t>(b)].state != State::kFree) {
      broken(name(static_cast<size_t>(b)) + " in the free list but not free");
    }
  }
  if (static_cast<int64_t>(free_list_.size()) != n_free_state) {
    broken("free list has " + std::to_string(free_list_.size()) + " blocks, " +
           std::to_string(n_free_state) + " are free");
  }

  // The LRU list holds exactly the evictable blocks, linked both ways.
  int64_t walked = 0;
  int32_t prev = -1;
  for (int32_t b = lru_head_; b >= 0; b = blocks_[static_cast<size_t>(b)].lru_next) {
    if (static_cast<size_t>(b) >= n || ++walked > n_evictable_state) {
      broken("LRU list is longer than the " + std::to_string(n_evictable_state) +
             " evictable blocks (or loops)");
    }
    const Block& blk = blocks_[static_cast<size_t>(b)];
    if (blk.state != State::kEvictable)
      broken(name(static_cast<size_t>(b)) + " in LRU, not evictable");
    if (blk.lru_prev != prev) broken(name(static_cast<size_t>(b)) + " has a wrong LRU back link");
    prev = b;
  }
  if (prev != lru_tail_ || walked != n_evictable_state || walked != n_evictable_) {
    broken("LRU list walks " + std::to_string(walked) + " blocks; " +
           std::to_string(n_evictable_state) + " are evictable, counter " +
           std::to_string(n_evictable_));
  }

  // Cache map: one entry per cached block, under its stored key, which rehashes from its parent
  // key and stored tokens; serials unique.
  if (static_cast<int64_t>(cache_.size()) != cached) {
    broken("cache map has " + std::to_string(cache_.size()) + " entries for " +
           std::to_string(cached) + " cached blocks");
  }
  std::vector<bool> has_entry(n, false);
  std::unordered_set<uint64_t> serials;
  for (const auto& [key, b] : cache_) {
    if (b < 0 || static_cast<size_t>(b) >= n) broken("cache entry for block " + std::to_string(b));
    const size_t bu = static_cast<size_t>(b);
    const Block& blk = blocks_[bu];
    if (!blk.cached || blk.key != key || has_entry[bu]) {
      broken("cache entry for " + name(bu) + " does not match its stored key (or is duplicated)");
    }
    has_entry[bu] = true;
    if (hash_block(blk.parent_key, stored_tokens(b)) != key) {
      broken(name(bu) + " key does not rehash from its parent key and stored tokens");
    }
    if (blk.serial == 0 || !serials.insert(blk.serial).second) {
      broken(name(bu) + " has a zero or duplicate serial");
    }
  }
}

}  // namespace shardlm
