// BPE model (see bpe.h). The merge loop mirrors tokenizers/src/models/bpe/word.rs merge_all:
// a min-heap of candidate merges keyed by (rank, position); stale entries are skipped by
// checking that the pair at that position still merges into the same id.
#include "runtime/text/bpe.h"
#include "runtime/text/byte_level.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "runtime/text/utf8.h"

namespace shardlm::text {

namespace {
constexpr size_t kCacheMaxWordBytes = 256;
constexpr size_t kCacheMaxEntries = 1 << 16;

struct Symbol {
  int32_t id;
  int32_t prev, next;
  bool alive;
};

struct Cand {
  uint32_t rank;
  int32_t pos;
  int32_t new_id;
  bool operator<(const Cand& o) const {  // priority_queue is a max-heap: invert
    if (rank != o.rank) return rank > o.rank;
    return pos > o.pos;
  }
};
}  // namespace

BpeModel::BpeModel(const Json& model, const std::string& path) {
  const std::string type = opt_string(model, "type", path, "BPE");
  if (type != "BPE") {
    fail(StatusCode::kUnsupported,
         path + ".type: model type '" + type + "' is not supported (only BPE)");
  }
  auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() && dropout->is_number() &&
      dropout->get<double>() > 0.0) {
    fail(StatusCode::kUnsupported, path + ".dropout: BPE dropout is not supported");
  }
  read_vocab(need(model, "vocab", path), path + ".vocab");
  const std::string unk = opt_string(model, "unk_token", path);
  byte_fallback_ = opt_bool(model, "byte_fallback", path, false);
  fuse_unk_ = opt_bool(model, "fuse_unk", path, false);
  ignore_merges_ = opt_bool(model, "ignore_merges", path, false);
  prefix_ = opt_string(model, "continuing_subword_prefix", path);
  suffix_ = opt_string(model, "end_of_word_suffix", path);
  if (!unk.empty()) {
    unk_id_ = token_to_id(unk);
    if (unk_id_ < 0) bad_field(path + ".unk_token", "'" + unk + "' is not in the vocab");
  }
  const Json& merges = need(model, "merges", path);
  if (!merges.is_array()) bad_field(path + ".merges", "expected an array");
  merges_.reserve(merges.size() * 2);
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& m = merges[i];
    const std::string where = path + ".merges[" + std::to_string(i) + "]";
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) bad_field(where, "expected \"left right\"");
      add_merge(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1), i, where);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      add_merge(m[0].get_ref<const std::string&>(), m[1].get_ref<const std::string&>(), i, where);
    } else {
      bad_field(where, "expected \"left right\" or [\"left\", \"right\"]");
    }
  }
  finish();
}

BpeModel::BpeModel(const Json& vocab, const std::string& merges_txt, const std::string& path) {
  read_vocab(vocab, path + " vocab.json");
  size_t pos = 0, line_no = 0;
  uint32_t rank = 0;
  while (pos < merges_txt.size()) {
    size_t end = merges_txt.find('\n', pos);
    if (end == std::string::npos) end = merges_txt.size();
    std::string_view line(merges_txt.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t sp = line.find(' ');
    const std::string where = path + " merges.txt line " + std::to_string(line_no);
    if (sp == std::string_view::npos) bad_field(where, "expected \"left right\"");
    add_merge(line.substr(0, sp), line.substr(sp + 1), rank++, where);
  }
  finish();
}

void BpeModel::read_vocab(const Json& vocab, const std::string& path) {
  if (!vocab.is_object()) bad_field(path, "expected an object of token -> id");
  vocab_.reserve(vocab.size() * 2);
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      bad_field(path + "[\"" + it.key() + "\"]", "expected a non-negative integer id");
    }
    const int32_t id = it.value().get<int32_t>();
    vocab_[it.key()] = id;
    if (id > max_id) max_id = id;
  }
  // The id -> token table is dense, so its size follows the largest id: an id far past the
  // number of entries (a corrupt or hostile file) would make it gigabytes. Real vocabularies are
  // dense, with at most a few gaps.
  const int64_t limit = std::max<int64_t>(4 * static_cast<int64_t>(vocab.size()), int64_t{1} << 20);
  if (max_id >= limit) {
    bad_field(path, "token id " + std::to_string(max_id) + " is far past the vocabulary's " +
                        std::to_string(vocab.size()) + " entries (ids must lie below " +
                        std::to_string(limit) + "; a vocabulary's ids run 0 .. n-1 with few gaps)");
  }
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [tok, id] : vocab_) id_to_token_[id] = tok;
}

void BpeModel::add_merge(std::string_view a, std::string_view b, uint32_t rank,
                         const std::string& where) {
  const int32_t ia = token_to_id(a), ib = token_to_id(b);
  if (ia < 0 || ib < 0) bad_field(where, "merge part is not in the vocab");
  std::string joined(a);
  joined += b;
  // HF: the merged token drops the continuing_subword_prefix of its right part.
  if (!prefix_.empty() && b.substr(0, prefix_.size()) == prefix_) {
    joined = std::string(a) + std::string(b.substr(prefix_.size()));
  }
  const int32_t inew = token_to_id(joined);
  if (inew < 0) bad_field(where, "merged token '" + joined + "' is not in the vocab");
  const uint64_t key = (uint64_t(uint32_t(ia)) << 32) | uint32_t(ib);
  merges_[key] = (uint64_t(rank) << 32) | uint32_t(inew);  // as HF: a later duplicate wins
}

void BpeModel::finish() {
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[b] = token_to_id(name);
  }
}

int32_t BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(id_to_token_.size())) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const int32_t id = token_to_id(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t before = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + before, out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  std::string buf;
  bool prev_unk = false;
  size_t i = 0;
  while (i < word.size()) {
    size_t n = utf8_valid_len(word, i);
    if (n == 0) n = 1;  // ill-formed byte: treat as its own "character"
    const bool first = i == 0, last = i + n == word.size();
    std::string_view ch = word.substr(i, n);
    int32_t id;
    if (prefix_.empty() && suffix_.empty()) {
      id = token_to_id(ch);
    } else {
      buf.clear();
      if (!first) buf += prefix_;
      buf += ch;
      if (last) buf += suffix_;
      id = token_to_id(buf);
    }
    if (id >= 0) {
      syms.push_back({id, 0, 0, true});
      prev_unk = false;
    } else {
      bool done = false;
      if (byte_fallback_) {
        bool all = true;
        for (size_t k = 0; k < n; ++k) all = all && byte_ids_[static_cast<uint8_t>(ch[k])] >= 0;
        if (all) {
          for (size_t k = 0; k < n; ++k)
            syms.push_back({byte_ids_[static_cast<uint8_t>(ch[k])], 0, 0, true});
          done = true;
          prev_unk = false;
        }
      }
      if (!done && unk_id_ >= 0) {
        if (!(fuse_unk_ && prev_unk)) syms.push_back({unk_id_, 0, 0, true});
        prev_unk = true;
      }
    }
    i += n;
  }
  const int32_t count = static_cast<int32_t>(syms.size());
  for (int32_t k = 0; k < count; ++k) {
    syms[k].prev = k - 1;
    syms[k].next = k + 1 < count ? k + 1 : -1;
  }
  auto lookup = [&](int32_t a, int32_t b, uint32_t& rank, int32_t& nid) {
    auto it = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
    if (it == merges_.end()) return false;
    rank = static_cast<uint32_t>(it->second >> 32);
    nid = static_cast<int32_t>(it->second & 0xFFFFFFFFu);
    return true;
  };
  std::vector<Cand> heap_store;
  heap_store.reserve(count);
  std::priority_queue<Cand> heap(std::less<Cand>(), std::move(heap_store));
  for (int32_t k = 0; k + 1 < count; ++k) {
    uint32_t r;
    int32_t nid;
    if (lookup(syms[k].id, syms[k + 1].id, r, nid)) heap.push({r, k, nid});
  }
  while (!heap.empty()) {
    const Cand top = heap.top();
    heap.pop();
    Symbol& cur = syms[top.pos];
    if (!cur.alive || cur.next < 0) continue;
    const int32_t nxt = cur.next;
    uint32_t r;
    int32_t nid;
    if (!lookup(cur.id, syms[nxt].id, r, nid) || nid != top.new_id) continue;
    cur.id = top.new_id;
    syms[nxt].alive = false;
    cur.next = syms[nxt].next;
    if (cur.next >= 0) syms[cur.next].prev = top.pos;
    if (cur.prev >= 0 && lookup(syms[cur.prev].id, cur.id, r, nid)) heap.push({r, cur.prev, nid});
    if (cur.next >= 0 && lookup(cur.id, syms[cur.next].id, r, nid)) heap.push({r, top.pos, nid});
  }
  for (int32_t k = count > 0 ? 0 : -1; k >= 0; k = syms[k].next) out.push_back(syms[k].id);
}

bool BpeModel::fuses_unknown() const {
  if (!fuse_unk_ || unk_id_ < 0) return false;
  if (!byte_fallback_) return true;
  return std::any_of(std::begin(byte_ids_), std::end(byte_ids_), [](int32_t id) { return id < 0; });
}

bool BpeModel::may_drop_unknown(bool byte_level_input) const {
  if (unk_id_ >= 0) return false;
  if (byte_fallback_ &&
      std::none_of(std::begin(byte_ids_), std::end(byte_ids_), [](int32_t id) { return id < 0; }))
    return false;
  if (!byte_level_input) return true;
  for (int b = 0; b < 256; ++b)
    if (token_to_id(byte_to_char(static_cast<uint8_t>(b))) < 0) return true;
  return false;
}

size_t BpeModel::longest_token_bytes() const {
  size_t n = unk_id_ >= 0 ? 4 : 0;  // an unfused unk stands for one character
  for (const std::string& t : id_to_token_) n = std::max(n, t.size());
  return n;
}

}  // namespace shardlm::text
