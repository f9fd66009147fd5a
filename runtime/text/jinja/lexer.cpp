// Jinja lexer (see lexer.h). Follows jinja2/lexer.py: the lstrip_blocks rule strips spaces and
// tabs before a {% or {# tag when only whitespace precedes it on its line; trim_blocks removes
// one newline after %} or #}; "-" strips all adjacent whitespace; brackets inside a tag are
// balanced before an end marker is recognized.
#include "runtime/text/jinja/lexer.h"

#include <cctype>

#include "runtime/core/status.h"
#include "runtime/text/utf8.h"

namespace shardlm::text::jinja {

void syntax_error(int line, const std::string& msg) {
  fail(StatusCode::kFormat, "chat template line " + std::to_string(line) + ": " + msg);
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int count_nl(const std::string& s, size_t b, size_t e) {
  int n = 0;
  for (size_t k = b; k < e; ++k) n += s[k] == '\n';
  return n;
}

std::string normalize_newlines(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    if (in[k] == '\r') {
      out += '\n';
      if (k + 1 < in.size() && in[k + 1] == '\n') ++k;
    } else {
      out += in[k];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

// Decodes a Python string literal body (unicode-escape semantics).
std::string unescape(const std::string& body, int line) {
  std::string out;
  for (size_t k = 0; k < body.size(); ++k) {
    const char c = body[k];
    if (c != '\\' || k + 1 >= body.size()) {
      out += c;
      continue;
    }
    const char e = body[++k];
    auto hex = [&](size_t n) {
      if (k + n >= body.size()) syntax_error(line, "truncated \\x/\\u escape");
      uint32_t v = 0;
      for (size_t q = 1; q <= n; ++q) {
        const char h = body[k + q];
        if (!std::isxdigit(static_cast<unsigned char>(h)))
          syntax_error(line, "bad hex escape in string");
        v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                               ? h - '0'
                                               : (std::tolower(h) - 'a' + 10));
      }
      k += n;
      return v;
    };
    switch (e) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'v':
        out += '\v';
        break;
      case '\n':
        break;  // line continuation
      case 'x':
        utf8_append(out, hex(2));
        break;
      case 'u':
        utf8_append(out, hex(4));
        break;
      case 'U':
        utf8_append(out, hex(8));
        break;
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (int q = 0; q < 2 && k + 1 < body.size() && body[k + 1] >= '0' && body[k + 1] <= '7';
               ++q)
            v = v * 8 + static_cast<uint32_t>(body[++k] - '0');
          utf8_append(out, v);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& src) : s_(normalize_newlines(src)) {}

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < s_.size()) {
      size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit_data(pos_, s_.size(), s_.substr(pos_));
        break;
      }
      const char kind = s_[tag + 1];
      const char sign =
          tag + 2 < s_.size() && (s_[tag + 2] == '-' || s_[tag + 2] == '+') ? s_[tag + 2] : 0;
      std::string text = s_.substr(pos_, tag - pos_);
      if (sign == '-') {
        size_t e = text.size();
        while (e > 0 && is_space(text[e - 1])) --e;
        text.resize(e);
      } else if (sign != '+' && kind != '{') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          bool all_ws = l_pos < text.size();
          for (size_t k = l_pos; k < text.size(); ++k) all_ws = all_ws && is_space(text[k]);
          if (all_ws) text.resize(l_pos);
        }
      }
      emit_data(pos_, tag, text);
      line_ += count_nl(s_, pos_, tag);
      size_t p = tag + 2 + (sign ? 1 : 0);
      const size_t tag_start_line = line_;
      if (kind == '#') {
        size_t end = s_.find("#}", p);
        if (end == std::string::npos) syntax_error(line_, "missing end of comment tag");
        const char esign = end > p && (s_[end - 1] == '-' || s_[end - 1] == '+') ? s_[end - 1] : 0;
        size_t after = end + 2;
        after = apply_end(after, esign, true);
        line_ += count_nl(s_, p, after);
        line_starting = after > 0 && s_[after - 1] == '\n';
        pos_ = after;
        continue;
      }
      if (kind == '%' && is_raw(p)) continue;
      const bool block = kind == '%';
      out_.push_back(
          {block ? Tok::kBlockBegin : Tok::kVarBegin, "", static_cast<int>(tag_start_line)});
      size_t after = lex_inside(p, block);
      line_starting = after > 0 && s_[after - 1] == '\n';
      pos_ = after;
    }
    out_.push_back({Tok::kEof, "", line_});
    return std::move(out_);
  }

 private:
  size_t find_tag(size_t from) const {
    size_t k = from;
    while ((k = s_.find('{', k)) != std::string::npos) {
      if (k + 1 < s_.size() && (s_[k + 1] == '{' || s_[k + 1] == '%' || s_[k + 1] == '#')) return k;
      ++k;
    }
    return std::string::npos;
  }

  void emit_data(size_t b, size_t, std::string text) {
    if (text.empty()) return;
    out_.push_back({Tok::kData, std::move(text), line_});
    (void)b;
  }

  // Position after an end marker's trailing whitespace handling.
  size_t apply_end(size_t after, char esign, bool block) const {
    if (esign == '-') {
      while (after < s_.size() && is_space(s_[after])) ++after;
    } else if (esign != '+' && block && after < s_.size() && s_[after] == '\n') {
      ++after;  // trim_blocks
    }
    return after;
  }

  // {% raw %} ... {% endraw %}: everything between is data.
  bool is_raw(size_t p) {
    size_t k = p;
    while (k < s_.size() && is_space(s_[k])) ++k;
    if (s_.compare(k, 3, "raw") != 0) return false;
    k += 3;
    while (k < s_.size() && is_space(s_[k])) ++k;
    char esign = 0;
    if (k < s_.size() && (s_[k] == '-' || s_[k] == '+')) esign = s_[k++];
    if (s_.compare(k, 2, "%}") != 0) return false;
    size_t body = apply_end(k + 2, esign, true);
    // Find {%[-+]? endraw [-+]?%}
    size_t search = body;
    while (true) {
      size_t t = s_.find("{%", search);
      if (t == std::string::npos) syntax_error(line_, "missing endraw for raw block");
      size_t q = t + 2;
      char bsign = 0;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) bsign = s_[q++];
      while (q < s_.size() && is_space(s_[q])) ++q;
      if (s_.compare(q, 6, "endraw") == 0) {
        q += 6;
        while (q < s_.size() && is_space(s_[q])) ++q;
        char es = 0;
        if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) es = s_[q++];
        if (s_.compare(q, 2, "%}") == 0) {
          std::string text = s_.substr(body, t - body);
          if (bsign == '-') {
            size_t e = text.size();
            while (e > 0 && is_space(text[e - 1])) --e;
            text.resize(e);
          }
          emit_data(body, t, text);
          const size_t after = apply_end(q + 2, es, true);
          line_ += count_nl(s_, p, after);
          pos_ = after;
          return true;
        }
      }
      search = t + 2;
    }
  }

  size_t lex_inside(size_t p, bool block) {
    int depth = 0;
    while (true) {
      while (p < s_.size() && is_space(s_[p])) {
        if (s_[p] == '\n') ++line_;
        ++p;
      }
      if (p >= s_.size())
        syntax_error(line_, block ? "unexpected end of template, expected '%}'"
                                  : "unexpected end of template, expected '}}'");
      if (depth == 0) {
        const char* end = block ? "%}" : "}}";
        char esign = 0;
        size_t q = p;
        if (s_[q] == '-' || (block && s_[q] == '+')) {
          if (s_.compare(q + 1, 2, end) == 0) esign = s_[q++];
        }
        if (s_.compare(q, 2, end) == 0) {
          out_.push_back({block ? Tok::kBlockEnd : Tok::kVarEnd, "", line_});
          size_t after = apply_end(q + 2, esign, block);
          line_ += count_nl(s_, q + 2, after);
          return after;
        }
      }
      const char c = s_[p];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = p;
        while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_'))
          ++e;
        out_.push_back({Tok::kName, s_.substr(p, e - p), line_});
        p = e;
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t e = p;
        while (e < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[e])) || s_[e] == '_'))
          ++e;
        bool is_float = false;
        const bool after_dot =
            !out_.empty() && out_.back().type == Tok::kOp && out_.back().text == ".";
        if (!after_dot && e + 1 < s_.size() && s_[e] == '.' &&
            std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[e])) || s_[e] == '_'))
            ++e;
        }
        if (!after_dot && e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
          size_t q = e + 1;
          if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
          if (q < s_.size() && std::isdigit(static_cast<unsigned char>(s_[q]))) {
            is_float = true;
            e = q;
            while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
          }
        }
        std::string num;
        for (size_t k = p; k < e; ++k)
          if (s_[k] != '_') num += s_[k];
        Token t{is_float ? Tok::kFloat : Tok::kInt, num, line_};
        try {
          if (is_float)
            t.fval = std::stod(num);
          else
            t.ival = std::stoll(num);
        } catch (const std::exception&) {
          syntax_error(line_, "number out of range: " + num);
        }
        out_.push_back(t);
        p = e;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t e = p + 1;
        while (e < s_.size() && s_[e] != c) {
          if (s_[e] == '\\') ++e;
          ++e;
        }
        if (e >= s_.size()) syntax_error(line_, "unterminated string literal");
        const std::string body = s_.substr(p + 1, e - p - 1);
        out_.push_back({Tok::kString, unescape(body, line_), line_});
        line_ += count_nl(s_, p, e);
        p = e + 1;
        continue;
      }
      static const char* const kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
      bool matched = false;
      for (const char* op : kOps2) {
        if (s_.compare(p, 2, op) == 0) {
          out_.push_back({Tok::kOp, op, line_});
          p += 2;
          matched = true;
          break;
        }
      }
      if (matched) continue;
      if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) != std::string_view::npos) {
        if (c == '(' || c == '[' || c == '{') ++depth;
        if (c == ')' || c == ']' || c == '}') {
          if (depth == 0) syntax_error(line_, std::string("unexpected '") + c + "'");
          --depth;
        }
        out_.push_back({Tok::kOp, std::string(1, c), line_});
        ++p;
        continue;
      }
      syntax_error(line_, std::string("unexpected character '") + c + "'");
    }
  }

  std::string s_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> lex(const std::string& source) {
  return Lexer(source).run();
}

}  // namespace shardlm::text::jinja
