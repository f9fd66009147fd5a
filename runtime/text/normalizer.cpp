// Normalizer implementations (see normalizer.h).
#include "runtime/text/normalizer.h"

#include <vector>

#include "runtime/text/byte_level.h"
#include "runtime/text/regex.h"
#include "runtime/text/unicode_norm.h"
#include "runtime/text/utf8.h"

namespace shardlm::text {

bool is_unicode_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

namespace {

class SequenceNorm : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> items;
  void normalize(std::string& s) const override {
    for (const auto& n : items) n->normalize(s);
  }
};

class UnicodeNorm : public Normalizer {
 public:
  explicit UnicodeNorm(NormForm f) : form(f) {}
  NormForm form;
  void normalize(std::string& s) const override { s = unicode_normalize(s, form); }
};

class LowercaseNorm : public Normalizer {
 public:
  // ASCII and Latin-1/Greek/Cyrillic basic ranges; full Unicode case folding is not needed by
  // the supported model families.
  void normalize(std::string& s) const override {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
      uint32_t cp = utf8_next(s, i);
      if ((cp >= 'A' && cp <= 'Z') || (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) ||
          (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) || (cp >= 0x410 && cp <= 0x42F)) {
        cp += 32;
      } else if (cp >= 0x400 && cp <= 0x40F) {
        cp += 80;
      }
      utf8_append(out, cp);
    }
    s = std::move(out);
  }
};

class PrependNorm : public Normalizer {
 public:
  std::string prepend;
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend);
  }
};

class ReplaceNorm : public Normalizer {
 public:
  std::string literal, content;
  std::unique_ptr<Regex> regex;
  void normalize(std::string& s) const override {
    if (!regex) {
      s = replace_all(s, literal, content);
      return;
    }
    std::string out;
    size_t pos = 0;
    for (auto [b, e] : regex->find_all(s)) {
      out.append(s, pos, b - pos);
      out += content;
      pos = e;
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
  }
};

class StripNorm : public Normalizer {
 public:
  bool left = true, right = true;
  void normalize(std::string& s) const override {
    size_t b = 0, e = s.size();
    if (left) {
      while (b < e) {
        size_t i = b;
        if (!is_unicode_space(utf8_next(s, i))) break;
        b = i;
      }
    }
    if (right) {
      while (e > b) {
        size_t start = e - 1;
        while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!is_unicode_space(utf8_next(s, i))) break;
        e = start;
      }
    }
    s = s.substr(b, e - b);
  }
};

class ByteLevelNorm : public Normalizer {
 public:
  void normalize(std::string& s) const override { s = byte_level_encode(s); }
};

// Reads {"String": "..."} or {"Regex": "..."} pattern objects.
void read_pattern(const Json& j, const std::string& path, std::string& literal,
                  std::unique_ptr<Regex>& regex) {
  const Json& p = need(j, "pattern", path);
  if (p.is_object() && p.contains("String") && p["String"].is_string()) {
    literal = p["String"].get<std::string>();
  } else if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
    regex = std::make_unique<Regex>(p["Regex"].get<std::string>(), path + ".pattern");
  } else {
    bad_field(path + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
  }
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string type = need_string(j, "type", path);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNorm>();
    const Json& items = need(j, "normalizers", path);
    if (!items.is_array()) bad_field(path + ".normalizers", "expected an array");
    for (size_t i = 0; i < items.size(); ++i) {
      auto n = make_normalizer(items[i], path + ".normalizers[" + std::to_string(i) + "]");
      if (n) seq->items.push_back(std::move(n));
    }
    return seq;
  }
  if (type == "NFC") return std::make_unique<UnicodeNorm>(NormForm::kNFC);
  if (type == "NFD") return std::make_unique<UnicodeNorm>(NormForm::kNFD);
  if (type == "NFKC") return std::make_unique<UnicodeNorm>(NormForm::kNFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNorm>(NormForm::kNFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNorm>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNorm>();
  if (type == "Prepend") {
    auto n = std::make_unique<PrependNorm>();
    n->prepend = need_string(j, "prepend", path);
    return n;
  }
  if (type == "Replace") {
    auto n = std::make_unique<ReplaceNorm>();
    read_pattern(j, path, n->literal, n->regex);
    n->content = need_string(j, "content", path);
    return n;
  }
  if (type == "Strip") {
    auto n = std::make_unique<StripNorm>();
    n->left = opt_bool(j, "strip_left", path, true);
    n->right = opt_bool(j, "strip_right", path, true);
    return n;
  }
  fail(StatusCode::kUnsupported, path + ": normalizer type '" + type + "' is not supported");
}

}  // namespace shardlm::text
