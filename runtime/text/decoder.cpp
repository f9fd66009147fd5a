// Decoder implementations (see decoder.h); each follows tokenizers/src/decoders/*.rs.
#include "runtime/text/decoder.h"

#include "runtime/text/byte_level.h"
#include "runtime/text/normalizer.h"
#include "runtime/text/regex.h"
#include "runtime/text/utf8.h"

namespace shardlm::text {

namespace {

class SequenceDec : public Decoder {
 public:
  std::vector<std::unique_ptr<Decoder>> items;
  void decode_chain(std::vector<std::string>& t) const override {
    for (const auto& d : items) d->decode_chain(t);
  }
};

class ByteLevelDec : public Decoder {
 public:
  // As tokenizers' ByteLevel decoder: a token whose characters are all stand-ins becomes those
  // bytes; any other token keeps its own UTF-8. The whole sequence is then repaired lossily.
  void decode_chain(std::vector<std::string>& t) const override {
    std::string bytes;
    for (const auto& s : t) {
      std::string mapped;
      bool all = true;
      size_t i = 0;
      while (i < s.size() && all) {
        if (utf8_valid_len(s, i) == 0) {
          all = false;
          break;
        }
        const int b = char_to_byte(utf8_next(s, i));
        if (b < 0)
          all = false;
        else
          mapped.push_back(static_cast<char>(b));
      }
      bytes += all ? mapped : s;
    }
    t.assign(1, utf8_sanitize(bytes));
  }
};

class MetaspaceDec : public Decoder {
 public:
  std::string replacement = "\xE2\x96\x81";
  bool strip_first = true;  // prepend_scheme != never
  // As tokenizers: every replacement char becomes a space, except in the first token, where
  // they are all dropped (when a prefix was prepended).
  void decode_chain(std::vector<std::string>& t) const override {
    for (size_t i = 0; i < t.size(); ++i)
      t[i] = replace_all(t[i], replacement, i == 0 && strip_first ? "" : " ");
  }
};

class ReplaceDec : public Decoder {
 public:
  std::string literal, content;
  std::unique_ptr<Regex> regex;
  void decode_chain(std::vector<std::string>& t) const override {
    for (auto& s : t) {
      if (!regex) {
        s = replace_all(s, literal, content);
        continue;
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
  }
};

class ByteFallbackDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& t) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pending_count = 0;
    auto flush = [&]() {
      if (pending_count == 0) return;
      if (utf8_is_valid(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending_count; ++k) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
      pending_count = 0;
    };
    for (auto& s : t) {
      const int b = parse_byte_token(s);
      if (b >= 0) {
        pending.push_back(static_cast<char>(b));
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(s));
      }
    }
    flush();
    t = std::move(out);
  }
};

class FuseDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& t) const override {
    std::string all;
    for (const auto& s : t) all += s;
    t.assign(1, std::move(all));
  }
};

class StripDec : public Decoder {
 public:
  std::string content;
  size_t start = 0, stop = 0;
  void decode_chain(std::vector<std::string>& t) const override {
    for (auto& s : t) {
      size_t b = 0, e = s.size();
      for (size_t k = 0;
           k < start && e - b >= content.size() && s.compare(b, content.size(), content) == 0; ++k)
        b += content.size();
      for (size_t k = 0; k < stop && e - b >= content.size() &&
                         s.compare(e - content.size(), content.size(), content) == 0;
           ++k)
        e -= content.size();
      s = s.substr(b, e - b);
    }
  }
};

class BpeDec : public Decoder {  // "BPEDecoder": suffix -> space, none after the last token
 public:
  std::string suffix = "</w>";
  void decode_chain(std::vector<std::string>& t) const override {
    for (size_t i = 0; i < t.size(); ++i)
      t[i] = replace_all(t[i], suffix, i + 1 == t.size() ? "" : " ");
  }
};

class WordPieceDec : public Decoder {
 public:
  std::string prefix = "##";
  void decode_chain(std::vector<std::string>& t) const override {
    for (size_t i = 0; i < t.size(); ++i) {
      if (i != 0) {
        if (t[i].compare(0, prefix.size(), prefix) == 0) {
          t[i] = t[i].substr(prefix.size());
        } else {
          t[i] = " " + t[i];
        }
      }
    }
  }
};

}  // namespace

int parse_byte_token(const std::string& s) {
  if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else
      return -1;
  }
  return v;
}

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string type = need_string(j, "type", path);
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceDec>();
    const Json& items = need(j, "decoders", path);
    if (!items.is_array()) bad_field(path + ".decoders", "expected an array");
    for (size_t i = 0; i < items.size(); ++i) {
      auto d = make_decoder(items[i], path + ".decoders[" + std::to_string(i) + "]");
      if (d) seq->items.push_back(std::move(d));
    }
    return seq;
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDec>();
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDec>();
    d->replacement = opt_string(j, "replacement", path, "\xE2\x96\x81");
    const std::string scheme = opt_string(j, "prepend_scheme", path, "");
    d->strip_first =
        scheme.empty() ? opt_bool(j, "add_prefix_space", path, true) : scheme != "never";
    return d;
  }
  if (type == "Replace") {
    auto d = std::make_unique<ReplaceDec>();
    const Json& p = need(j, "pattern", path);
    if (p.is_object() && p.contains("String") && p["String"].is_string()) {
      d->literal = p["String"].get<std::string>();
    } else if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
      d->regex = std::make_unique<Regex>(p["Regex"].get<std::string>(), path + ".pattern");
    } else {
      bad_field(path + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
    }
    d->content = need_string(j, "content", path);
    return d;
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDec>();
  if (type == "Fuse") return std::make_unique<FuseDec>();
  if (type == "Strip") {
    auto d = std::make_unique<StripDec>();
    d->content = need_string(j, "content", path);
    d->start = static_cast<size_t>(opt_int(j, "start", path, 0));
    d->stop = static_cast<size_t>(opt_int(j, "stop", path, 0));
    return d;
  }
  if (type == "BPEDecoder") {
    auto d = std::make_unique<BpeDec>();
    d->suffix = opt_string(j, "suffix", path, "</w>");
    return d;
  }
  if (type == "WordPiece") {
    auto d = std::make_unique<WordPieceDec>();
    d->prefix = opt_string(j, "prefix", path, "##");
    return d;
  }
  fail(StatusCode::kUnsupported, path + ": decoder type '" + type + "' is not supported");
}

}  // namespace shardlm::text
