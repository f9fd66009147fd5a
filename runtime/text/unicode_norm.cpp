// Unicode normalization (see unicode_norm.h): full decomposition, canonical ordering by
// combining class, and canonical composition, with Hangul handled algorithmically.
#include "runtime/text/unicode_norm.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "runtime/text/utf8.h"

namespace shardlm::text {

namespace {
#include "runtime/text/unicode_tables.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr uint32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

struct Tables {
  std::unordered_map<uint32_t, uint8_t> ccc;
  // cp -> (offset, len) into kDecompPool, canonical and compatibility.
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> canon, compat;
  std::unordered_map<uint64_t, uint32_t> compose;
  Tables() {
    for (const auto& e : kCccTable) ccc[e[0]] = static_cast<uint8_t>(e[1]);
    for (const auto& e : kDecompTable) {
      if (e[1] == 0) {
        canon[e[0]] = {e[2], e[3]};
        compat.emplace(e[0], std::make_pair(e[2], e[3]));  // overridden by a compat entry
      } else {
        compat[e[0]] = {e[2], e[3]};
      }
    }
    for (const auto& e : kCompTable) compose[(uint64_t(e[0]) << 32) | e[1]] = e[2];
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

uint8_t ccc_of(const Tables& t, uint32_t cp) {
  if (cp < 0x300) return 0;
  auto it = t.ccc.find(cp);
  return it == t.ccc.end() ? 0 : it->second;
}

void decompose(const Tables& t, uint32_t cp, bool compat, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xA0) {
    const auto& m = compat ? t.compat : t.canon;
    auto it = m.find(cp);
    if (it != m.end()) {
      out.insert(out.end(), kDecompPool + it->second.first,
                 kDecompPool + it->second.first + it->second.second);
      return;
    }
  }
  out.push_back(cp);
}

void reorder(const Tables& t, std::vector<uint32_t>& cps) {
  // Stable sort of each run of non-starters by combining class.
  size_t i = 0;
  while (i < cps.size()) {
    if (ccc_of(t, cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc_of(t, cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j,
                     [&](uint32_t a, uint32_t b) { return ccc_of(t, a) < ccc_of(t, b); });
    i = j;
  }
}

bool compose_pair(const Tables& t, uint32_t a, uint32_t b, uint32_t& out) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    out = kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    return true;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    out = a + (b - kTBase);
    return true;
  }
  auto it = t.compose.find((uint64_t(a) << 32) | b);
  if (it == t.compose.end()) return false;
  out = it->second;
  return true;
}

void compose(const Tables& t, std::vector<uint32_t>& cps) {
  if (cps.empty()) return;
  size_t starter = 0;
  bool have_starter = ccc_of(t, cps[0]) == 0;
  int last_ccc = have_starter ? 0 : 256;
  size_t w = 1;
  for (size_t r = 1; r < cps.size(); ++r) {
    const uint32_t c = cps[r];
    const int cc = ccc_of(t, c);
    uint32_t comp;
    const bool blocked = w - 1 != starter && (last_ccc == 0 || last_ccc >= cc);
    if (have_starter && !blocked && compose_pair(t, cps[starter], c, comp)) {
      cps[starter] = comp;
      continue;
    }
    if (cc == 0) {
      starter = w;
      have_starter = true;
    }
    last_ccc = cc;
    cps[w++] = c;
  }
  cps.resize(w);
}
}  // namespace

std::string unicode_normalize(std::string_view s, NormForm form) {
  bool ascii = true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return std::string(s);
  const Tables& t = tables();
  const bool compat = form == NormForm::kNFKC || form == NormForm::kNFKD;
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) decompose(t, utf8_next(s, i), compat, cps);
  reorder(t, cps);
  if (form == NormForm::kNFC || form == NormForm::kNFKC) compose(t, cps);
  std::string out;
  out.reserve(s.size());
  for (uint32_t cp : cps) utf8_append(out, cp);
  return out;
}

}  // namespace shardlm::text
