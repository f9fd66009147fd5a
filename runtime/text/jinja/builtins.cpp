// Built-in globals, filters, tests and Python-like methods of the chat-template renderer
// (see interpreter.h). Covers what HF chat templates use: jinja2's default filters and tests
// (the common ones), transformers' tojson/raise_exception/strftime_now, and the str/list/dict
// methods templates call (strip, split, startswith, items, get, ...). Case mapping is ASCII.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>

#include "runtime/core/status.h"
#include "runtime/text/jinja/interpreter.h"
#include "runtime/text/normalizer.h"
#include "runtime/text/utf8.h"

namespace shardlm::text::jinja {

size_t py_len(const Value& v) {
  switch (v.t) {
    case Value::T::kString: {
      size_t n = 0;
      for (unsigned char c : v.s) n += (c & 0xC0) != 0x80;
      return n;
    }
    case Value::T::kList:
      return v.list->size();
    case Value::T::kDict:
      return v.dict->items.size();
    default:
      return 0;
  }
}

namespace {

bool py_space(uint32_t cp) {
  return is_unicode_space(cp) || (cp >= 0x1C && cp <= 0x1F);
}

std::vector<uint32_t> cps(const std::string& s) {
  return utf8_decode_all(utf8_sanitize(s));
}
std::string from_cps(const std::vector<uint32_t>& v, size_t b, size_t e) {
  std::string out;
  for (size_t k = b; k < e; ++k) utf8_append(out, v[k]);
  return out;
}

// str.strip/lstrip/rstrip with optional chars (None = whitespace).
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  const auto c = cps(s);
  std::vector<uint32_t> set;
  const bool ws = !chars || chars->is_none() || chars->is_undefined();
  if (!ws) set = cps(chars->s);
  auto strip_it = [&](uint32_t cp) {
    return ws ? py_space(cp) : std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t b = 0, e = c.size();
  if (left)
    while (b < e && strip_it(c[b])) ++b;
  if (right)
    while (e > b && strip_it(c[e - 1])) --e;
  return from_cps(c, b, e);
}

List py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
  List out;
  if (!sep || sep->is_none() || sep->is_undefined()) {
    const auto c = cps(s);
    size_t k = 0;
    int64_t splits = 0;
    while (k < c.size()) {
      while (k < c.size() && py_space(c[k])) ++k;
      if (k >= c.size()) break;
      if (maxsplit >= 0 && splits >= maxsplit) {
        size_t e = c.size();
        while (e > k && py_space(c[e - 1])) --e;
        out.push_back(Value::string(from_cps(c, k, e)));
        break;
      }
      size_t e = k;
      while (e < c.size() && !py_space(c[e])) ++e;
      out.push_back(Value::string(from_cps(c, k, e)));
      ++splits;
      k = e;
    }
    return out;
  }
  const std::string& d = sep->s;
  size_t pos = 0;
  int64_t splits = 0;
  while (maxsplit < 0 || splits < maxsplit) {
    const size_t hit = s.find(d, pos);
    if (hit == std::string::npos) break;
    out.push_back(Value::string(s.substr(pos, hit - pos)));
    pos = hit + d.size();
    ++splits;
  }
  out.push_back(Value::string(s.substr(pos)));
  return out;
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(c));
  return s;
}

std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (auto& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    const bool alpha = u < 0x80 && std::isalpha(u);
    if (alpha) c = static_cast<char>(prev_cased ? std::tolower(u) : std::toupper(u));
    prev_cased = alpha || u >= 0x80;
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  std::string out = ascii_map(s, [](int c) { return std::tolower(c); });
  if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80)
    out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string str_arg(Interpreter& in, const CallArgs& a, size_t idx, const char* name, int line,
                    const char* what) {
  const Value* v = a.get(idx, name);
  if (!v || !v->is_string())
    in.error(line, std::string(what) + ": argument '" + name + "' must be a string");
  return v->s;
}

int64_t int_arg(const CallArgs& a, size_t idx, const char* name, int64_t dflt) {
  const Value* v = a.get(idx, name);
  if (!v || v->is_none() || v->is_undefined()) return dflt;
  if (v->t == Value::T::kInt) return v->i;
  if (v->t == Value::T::kBool) return v->b;
  if (v->t == Value::T::kFloat) return static_cast<int64_t>(v->f);
  return dflt;
}

bool bool_arg(const CallArgs& a, size_t idx, const char* name, bool dflt) {
  const Value* v = a.get(idx, name);
  return v ? v->truthy() : dflt;
}

bool prefix_match(const std::string& s, const Value& p, bool start) {
  auto one = [&](const std::string& q) {
    if (q.size() > s.size()) return false;
    return start ? s.compare(0, q.size(), q) == 0
                 : s.compare(s.size() - q.size(), q.size(), q) == 0;
  };
  if (p.is_list()) {
    for (const auto& q : *p.list)
      if (q.is_string() && one(q.s)) return true;
    return false;
  }
  return p.is_string() && one(p.s);
}

std::string py_format(Interpreter& in, const std::string& fmt, const CallArgs& a, int line) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t k = 0; k < fmt.size(); ++k) {
    const char c = fmt[k];
    if (c == '{' && k + 1 < fmt.size() && fmt[k + 1] == '{') {
      out += '{';
      ++k;
      continue;
    }
    if (c == '}' && k + 1 < fmt.size() && fmt[k + 1] == '}') {
      out += '}';
      ++k;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t end = fmt.find('}', k);
    if (end == std::string::npos) in.error(line, "format: single '{' in format string");
    std::string field = fmt.substr(k + 1, end - k - 1);
    const size_t colon = field.find(':');
    if (colon != std::string::npos) field.resize(colon);
    const Value* v = nullptr;
    if (field.empty()) {
      v = auto_idx < a.args.size() ? &a.args[auto_idx] : nullptr;
      ++auto_idx;
    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      size_t idx = 0;
      const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), idx);
      if (ec != std::errc() || end != field.data() + field.size())
        in.error(line, "format: '{" + field + "}' is not an argument index");
      v = idx < a.args.size() ? &a.args[idx] : nullptr;
    } else {
      v = a.kwarg(field);
    }
    if (!v) in.error(line, "format: missing argument for '{" + field + "}'");
    out += to_str(*v);
    k = end;
  }
  return out;
}

Value method(std::string name, std::function<Value(CallArgs&)> fn) {
  return Value::function(std::move(name), std::move(fn));
}

}  // namespace

Value bound_method(Interpreter& in, const Value& obj, const std::string& name, int line) {
  Interpreter* ip = &in;
  if (obj.is_string()) {
    const std::string s = obj.s;
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      const bool l = name != "rstrip", r = name != "lstrip";
      return method(name, [s, l, r](CallArgs& a) {
        return Value::string(py_strip(s, a.get(0, "chars"), l, r));
      });
    }
    if (name == "split" || name == "rsplit") {
      const bool rs = name == "rsplit";
      return method(name, [s, rs](CallArgs& a) {
        const int64_t maxsplit = int_arg(a, 1, "maxsplit", -1);
        const Value* sep = a.get(0, "sep");
        if (!rs || maxsplit < 0) return Value::list_of(py_split(s, sep, maxsplit));
        // rsplit with a limit: split from the right.
        List all = py_split(s, sep, -1);
        if (static_cast<int64_t>(all.size()) <= maxsplit + 1) return Value::list_of(std::move(all));
        const std::string d = sep && sep->is_string() ? sep->s : " ";
        const size_t head_n = all.size() - static_cast<size_t>(maxsplit);
        std::string head;
        for (size_t k = 0; k < head_n; ++k) head += (k ? d : "") + all[k].s;
        List out{Value::string(head)};
        out.insert(out.end(), all.begin() + static_cast<std::ptrdiff_t>(head_n), all.end());
        return Value::list_of(std::move(out));
      });
    }
    if (name == "startswith" || name == "endswith") {
      const bool start = name == "startswith";
      return method(name, [s, start, ip](CallArgs& a) {
        const Value* p = a.get(0, "prefix");
        if (!p) ip->error(a.line, "startswith/endswith needs an argument");
        return Value::boolean(prefix_match(s, *p, start));
      });
    }
    if (name == "upper")
      return method(name, [s](CallArgs&) {
        return Value::string(ascii_map(s, [](int c) { return std::toupper(c); }));
      });
    if (name == "lower")
      return method(name, [s](CallArgs&) {
        return Value::string(ascii_map(s, [](int c) { return std::tolower(c); }));
      });
    if (name == "title") return method(name, [s](CallArgs&) { return Value::string(py_title(s)); });
    if (name == "capitalize")
      return method(name, [s](CallArgs&) { return Value::string(py_capitalize(s)); });
    if (name == "replace") {
      return method(name, [s, ip](CallArgs& a) {
        const std::string from = str_arg(*ip, a, 0, "old", a.line, "replace");
        const std::string to = str_arg(*ip, a, 1, "new", a.line, "replace");
        int64_t count = int_arg(a, 2, "count", -1);
        std::string out;
        if (from.empty()) {
          const auto c = cps(s);
          for (size_t k = 0; k <= c.size(); ++k) {
            if (count != 0) {
              out += to;
              --count;
            }
            if (k < c.size()) utf8_append(out, c[k]);
          }
          return Value::string(out);
        }
        size_t pos = 0;
        while (count != 0) {
          const size_t hit = s.find(from, pos);
          if (hit == std::string::npos) break;
          out.append(s, pos, hit - pos);
          out += to;
          pos = hit + from.size();
          --count;
        }
        out.append(s, pos, std::string::npos);
        return Value::string(out);
      });
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "count") {
      return method(name, [s, name, ip](CallArgs& a) {
        const std::string sub = str_arg(*ip, a, 0, "sub", a.line, name.c_str());
        if (name == "count") {
          if (sub.empty())
            return Value::integer(static_cast<int64_t>(py_len(Value::string(s)) + 1));
          int64_t n = 0;
          for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
          return Value::integer(n);
        }
        const size_t hit = name == "rfind" ? s.rfind(sub) : s.find(sub);
        if (hit == std::string::npos) {
          if (name == "index") ip->error(a.line, "substring not found");
          return Value::integer(-1);
        }
        return Value::integer(static_cast<int64_t>(py_len(Value::string(s.substr(0, hit)))));
      });
    }
    if (name == "join") {
      return method(name, [s, ip](CallArgs& a) {
        if (a.args.empty()) ip->error(a.line, "join needs an iterable");
        std::string out;
        const List items = ip->iterate(a.args[0], a.line);
        for (size_t k = 0; k < items.size(); ++k) {
          if (!items[k].is_string())
            ip->error(a.line, "join: sequence item " + std::to_string(k) + ": expected str");
          if (k) out += s;
          out += items[k].s;
        }
        return Value::string(out);
      });
    }
    if (name == "splitlines") {
      return method(name, [s](CallArgs&) {
        List out;
        size_t pos = 0;
        while (pos < s.size()) {
          size_t e = s.find_first_of("\r\n", pos);
          if (e == std::string::npos) {
            out.push_back(Value::string(s.substr(pos)));
            break;
          }
          out.push_back(Value::string(s.substr(pos, e - pos)));
          pos = e + ((s[e] == '\r' && e + 1 < s.size() && s[e + 1] == '\n') ? 2 : 1);
        }
        return Value::list_of(std::move(out));
      });
    }
    if (name == "format") {
      return method(name,
                    [s, ip](CallArgs& a) { return Value::string(py_format(*ip, s, a, a.line)); });
    }
    if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
        name == "isupper" || name == "islower") {
      return method(name, [s, name](CallArgs&) {
        if (s.empty()) return Value::boolean(false);
        bool ok = true, cased = false;
        for (unsigned char c : s) {
          if (name == "isdigit")
            ok = ok && std::isdigit(c);
          else if (name == "isalpha")
            ok = ok && (std::isalpha(c) || c >= 0x80);
          else if (name == "isalnum")
            ok = ok && (std::isalnum(c) || c >= 0x80);
          else if (name == "isspace")
            ok = ok && std::isspace(c);
          else if (name == "isupper") {
            ok = ok && !std::islower(c);
            cased = cased || std::isupper(c);
          } else {
            ok = ok && !std::isupper(c);
            cased = cased || std::islower(c);
          }
        }
        return Value::boolean(
            ok &&
            (name.rfind("is", 0) == 0 && (name == "isupper" || name == "islower") ? cased : true));
      });
    }
    return Value::undefined();
  }
  if (obj.is_list()) {
    const auto list = obj.list;
    if (name == "index" || name == "count") {
      return method(name, [list, name, ip](CallArgs& a) {
        if (a.args.empty()) ip->error(a.line, name + " needs an argument");
        int64_t n = 0;
        for (size_t k = 0; k < list->size(); ++k) {
          if (values_equal((*list)[k], a.args[0])) {
            if (name == "index") return Value::integer(static_cast<int64_t>(k));
            ++n;
          }
        }
        if (name == "index") ip->error(a.line, "value is not in list");
        return Value::integer(n);
      });
    }
    if (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
        name == "remove" || name == "clear" || name == "sort" || name == "reverse") {
      in.error(line, "access to attribute '" + name +
                         "' of 'list' object is unsafe (templates cannot modify values)");
    }
    return Value::undefined();
  }
  if (obj.is_dict() && !obj.dict->is_namespace) {
    const auto dict = obj.dict;
    if (name == "items") {
      return method(name, [dict](CallArgs&) {
        List out;
        for (const auto& kv : dict->items)
          out.push_back(Value::tuple_of({Value::string(kv.first), kv.second}));
        return Value::list_of(std::move(out));
      });
    }
    if (name == "keys") {
      return method(name, [dict](CallArgs&) {
        List out;
        for (const auto& kv : dict->items) out.push_back(Value::string(kv.first));
        return Value::list_of(std::move(out));
      });
    }
    if (name == "values") {
      return method(name, [dict](CallArgs&) {
        List out;
        for (const auto& kv : dict->items) out.push_back(kv.second);
        return Value::list_of(std::move(out));
      });
    }
    if (name == "get") {
      return method(name, [dict](CallArgs& a) {
        const Value* k = a.get(0, "key");
        if (k && k->is_string())
          if (const Value* v = dict->find(k->s)) return *v;
        const Value* d = a.get(1, "default");
        return d ? *d : Value::none();
      });
    }
    if (name == "update" || name == "pop" || name == "setdefault" || name == "clear" ||
        name == "popitem") {
      in.error(line, "access to attribute '" + name +
                         "' of 'dict' object is unsafe (templates cannot modify values)");
    }
    return Value::undefined();
  }
  return Value::undefined();
}

void add_builtin_globals(Frame& g, Interpreter* ip) {
  g.vars["range"] = method("range", [ip](CallArgs& a) {
    int64_t start = 0, stop = 0, step = 1;
    if (a.args.size() == 1) {
      stop = int_arg(a, 0, "stop", 0);
    } else if (a.args.size() >= 2) {
      start = int_arg(a, 0, "start", 0);
      stop = int_arg(a, 1, "stop", 0);
      if (a.args.size() >= 3) step = int_arg(a, 2, "step", 1);
    }
    if (step == 0) ip->error(a.line, "range() arg 3 must not be zero");
    List out;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
      if (out.size() >= ip->limits().max_range)
        ip->error(a.line, "range() too large for the sandbox");
      out.push_back(Value::integer(k));
    }
    return Value::list_of(std::move(out));
  });
  g.vars["namespace"] = method("namespace", [](CallArgs& a) {
    auto d = std::make_shared<Dict>();
    d->is_namespace = true;
    for (const auto& arg : a.args)
      if (arg.is_dict())
        for (const auto& kv : arg.dict->items) d->set(kv.first, kv.second);
    for (const auto& kv : a.kwargs) d->set(kv.first, kv.second);
    return Value::dict_of(d);
  });
  g.vars["dict"] = method("dict", [](CallArgs& a) {
    auto d = std::make_shared<Dict>();
    for (const auto& arg : a.args)
      if (arg.is_dict())
        for (const auto& kv : arg.dict->items) d->set(kv.first, kv.second);
    for (const auto& kv : a.kwargs) d->set(kv.first, kv.second);
    return Value::dict_of(d);
  });
  g.vars["raise_exception"] = method("raise_exception", [](CallArgs& a) -> Value {
    const std::string msg = a.args.empty() ? std::string() : to_str(a.args[0]);
    fail(StatusCode::kInvalidArg,
         "chat template line " + std::to_string(a.line) + ": template raised an exception: " + msg);
  });
  g.vars["strftime_now"] = method("strftime_now", [](CallArgs& a) {
    const std::string fmt = a.args.empty() ? std::string("%Y-%m-%d") : to_str(a.args[0]);
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &tm);
    return Value::string(std::string(buf, n));
  });
}

bool builtin_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& a, int line,
                  bool& found) {
  found = true;
  const Value* arg = a.get(0, "other");
  auto need_arg = [&]() -> const Value& {
    if (!arg) in.error(line, "test '" + name + "' needs an argument");
    return *arg;
  };
  auto cmp = [&](const Value& x, const Value& y) {
    try {
      return compare_values(x, y);
    } catch (const std::invalid_argument& e) {
      in.error(line, e.what());
    }
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.t == Value::T::kBool;
  if (name == "true") return v.t == Value::T::kBool && v.b;
  if (name == "false") return v.t == Value::T::kBool && !v.b;
  if (name == "integer") return v.t == Value::T::kInt;
  if (name == "float") return v.t == Value::T::kFloat;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict() && !v.dict->is_namespace;
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string();
  if (name == "callable") return v.is_func();
  if (name == "lower")
    return v.is_string() && ascii_map(v.s, [](int c) { return std::tolower(c); }) == v.s;
  if (name == "upper")
    return v.is_string() && ascii_map(v.s, [](int c) { return std::toupper(c); }) == v.s;
  if (name == "even" || name == "odd" || name == "divisibleby") {
    if (!v.is_number()) in.error(line, "test '" + name + "' needs a number");
    const int64_t x =
        v.t == Value::T::kFloat ? static_cast<int64_t>(v.f) : (v.t == Value::T::kBool ? v.b : v.i);
    if (name == "even") return x % 2 == 0;
    if (name == "odd") return x % 2 != 0;
    const int64_t d = int_arg(a, 0, "num", 0);
    if (d == 0) in.error(line, "divisibleby 0");
    return x % d == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return values_equal(v, need_arg());
  if (name == "ne" || name == "!=") return !values_equal(v, need_arg());
  if (name == "sameas") {
    const Value& o = need_arg();
    if (v.t != o.t) return false;
    if (v.is_list()) return v.list == o.list;
    if (v.is_dict()) return v.dict == o.dict;
    return values_equal(v, o);
  }
  if (name == "lt" || name == "lessthan" || name == "<") return cmp(v, need_arg()) < 0;
  if (name == "le" || name == "<=") return cmp(v, need_arg()) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return cmp(v, need_arg()) > 0;
  if (name == "ge" || name == ">=") return cmp(v, need_arg()) >= 0;
  if (name == "in") {
    const Value& seq = need_arg();
    if (seq.is_string()) return v.is_string() && seq.s.find(v.s) != std::string::npos;
    if (seq.is_list()) {
      for (const auto& x : *seq.list)
        if (values_equal(x, v)) return true;
      return false;
    }
    if (seq.is_dict()) return v.is_string() && seq.dict->find(v.s) != nullptr;
    return false;
  }
  found = false;
  return false;
}

namespace {

// attribute path "a.b" lookup used by map/selectattr/sort/join/sum.
Value attr_path(Interpreter& in, const Value& v, const std::string& path, int line) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    if (dot == std::string::npos) dot = path.size();
    const std::string part = path.substr(pos, dot - pos);
    if (cur.is_undefined()) return cur;
    if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      int64_t index = 0;
      const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
      if (ec != std::errc() || end != part.data() + part.size())
        return Value::undefined("index " + part + " is out of range");  // no container is this long
      cur = in.get_item(cur, Value::integer(index), line);
    } else
      cur = in.get_item(cur, Value::string(part), line);
    pos = dot + 1;
  }
  return cur;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The test/filter name and its extra args from select/reject/selectattr/rejectattr/map.
CallArgs tail_args(const CallArgs& a, size_t from) {
  CallArgs t;
  t.line = a.line;
  for (size_t k = from; k < a.args.size(); ++k) t.args.push_back(a.args[k]);
  for (const auto& kv : a.kwargs)
    if (kv.first != "attribute" && kv.first != "default") t.kwargs.push_back(kv);
  return t;
}

}  // namespace

Value builtin_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs& a,
                     int line, bool& found) {
  found = true;
  auto need_str = [&]() -> const std::string& {
    if (!v.is_string())
      in.error(line, "filter '" + name + "' expects a string, got '" + v.type_name() + "'");
    return v.s;
  };
  if (name == "safe" || (name == "list" && v.is_list())) return v;
  if (name == "string") return Value::string(to_str(v));
  if (name == "length" || name == "count") {
    if (!v.is_string() && !v.is_list() && !v.is_dict() && !v.is_undefined())
      in.error(line, std::string("object of type '") + v.type_name() + "' has no len()");
    return Value::integer(static_cast<int64_t>(py_len(v)));
  }
  if (name == "tojson") {
    const Value* ind = a.get(0, "indent");
    const int indent = ind && (ind->t == Value::T::kInt) ? static_cast<int>(ind->i) : -1;
    const Value* sk = a.kwarg("sort_keys");
    return Value::string(to_json(v, indent, sk && sk->truthy()));
  }
  if (name == "trim") return Value::string(py_strip(to_str(v), a.get(0, "chars"), true, true));
  if (name == "upper")
    return Value::string(ascii_map(to_str(v), [](int c) { return std::toupper(c); }));
  if (name == "lower")
    return Value::string(ascii_map(to_str(v), [](int c) { return std::tolower(c); }));
  if (name == "title") return Value::string(py_title(to_str(v)));
  if (name == "capitalize") return Value::string(py_capitalize(to_str(v)));
  if (name == "default" || name == "d") {
    const Value* dflt = a.get(0, "default_value");
    const bool boolean = bool_arg(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) return dflt ? *dflt : Value::string("");
    return v;
  }
  if (name == "first" || name == "last") {
    const List items = in.iterate(v, line);
    if (items.empty()) return Value::undefined("no first/last item, sequence was empty");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::list_of(in.iterate(v, line));
  if (name == "reverse") {
    if (v.is_string()) {
      auto c = cps(v.s);
      std::reverse(c.begin(), c.end());
      return Value::string(from_cps(c, 0, c.size()));
    }
    List items = in.iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value::list_of(std::move(items));
  }
  if (name == "join") {
    const Value* sep = a.get(0, "d");
    const Value* attr = a.get(1, "attribute");
    std::string out;
    const List items = in.iterate(v, line);
    for (size_t k = 0; k < items.size(); ++k) {
      if (k && sep) out += to_str(*sep);
      out += to_str(attr && attr->is_string() ? attr_path(in, items[k], attr->s, line) : items[k]);
    }
    return Value::string(out);
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::list_of({});
    if (!v.is_dict()) in.error(line, "filter 'items' expects a mapping");
    List out;
    for (const auto& kv : v.dict->items)
      out.push_back(Value::tuple_of({Value::string(kv.first), kv.second}));
    return Value::list_of(std::move(out));
  }
  if (name == "dictsort") {
    if (!v.is_dict()) in.error(line, "filter 'dictsort' expects a mapping");
    const bool case_sensitive = bool_arg(a, 0, "case_sensitive", false);
    const Value* by = a.get(1, "by");
    const bool by_value = by && by->is_string() && by->s == "value";
    const bool rev = bool_arg(a, 2, "reverse", false);
    List out;
    for (const auto& kv : v.dict->items)
      out.push_back(Value::tuple_of({Value::string(kv.first), kv.second}));
    std::stable_sort(out.begin(), out.end(), [&](const Value& x, const Value& y) {
      Value kx = (*x.list)[by_value ? 1 : 0], ky = (*y.list)[by_value ? 1 : 0];
      if (!case_sensitive && kx.is_string() && ky.is_string()) {
        kx.s = ascii_map(kx.s, [](int c) { return std::tolower(c); });
        ky.s = ascii_map(ky.s, [](int c) { return std::tolower(c); });
      }
      try {
        return rev ? compare_values(ky, kx) < 0 : compare_values(kx, ky) < 0;
      } catch (const std::invalid_argument& e) {
        in.error(line, e.what());
      }
    });
    return Value::list_of(std::move(out));
  }
  if (name == "sort") {
    const bool rev = bool_arg(a, 0, "reverse", false);
    const bool case_sensitive = bool_arg(a, 1, "case_sensitive", false);
    const Value* attr = a.get(2, "attribute");
    List items = in.iterate(v, line);
    auto key = [&](const Value& x) {
      Value k = attr && attr->is_string() ? attr_path(in, x, attr->s, line) : x;
      if (!case_sensitive && k.is_string())
        k.s = ascii_map(k.s, [](int c) { return std::tolower(c); });
      return k;
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      try {
        return rev ? compare_values(key(y), key(x)) < 0 : compare_values(key(x), key(y)) < 0;
      } catch (const std::invalid_argument& e) {
        in.error(line, e.what());
      }
    });
    return Value::list_of(std::move(items));
  }
  if (name == "unique") {
    List out;
    for (const auto& x : in.iterate(v, line)) {
      bool seen = false;
      for (const auto& y : out) seen = seen || values_equal(x, y);
      if (!seen) out.push_back(x);
    }
    return Value::list_of(std::move(out));
  }
  if (name == "map") {
    List out;
    const Value* attr = a.kwarg("attribute");
    const List items = in.iterate(v, line);
    if (attr) {
      const Value* dflt = a.kwarg("default");
      for (const auto& x : items) {
        Value r = attr_path(in, x, to_str(*attr), line);
        out.push_back(r.is_undefined() && dflt ? *dflt : r);
      }
      return Value::list_of(std::move(out));
    }
    if (a.args.empty() || !a.args[0].is_string())
      in.error(line, "map needs a filter name or attribute=");
    CallArgs rest = tail_args(a, 1);
    for (const auto& x : items) {
      CallArgs c = rest;
      out.push_back(in.apply_filter(a.args[0].s, x, c, line));
    }
    return Value::list_of(std::move(out));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool want = name == "select" || name == "selectattr";
    size_t idx = 0;
    std::string attr;
    if (by_attr) {
      if (a.args.empty() || !a.args[0].is_string())
        in.error(line, name + " needs an attribute name");
      attr = a.args[0].s;
      idx = 1;
    }
    std::string test = idx < a.args.size() && a.args[idx].is_string() ? a.args[idx].s : "";
    CallArgs rest = tail_args(a, idx + 1);
    List out;
    for (const auto& x : in.iterate(v, line)) {
      const Value subject = by_attr ? attr_path(in, x, attr, line) : x;
      bool ok;
      if (test.empty()) {
        ok = subject.truthy();
      } else {
        CallArgs c = rest;
        ok = in.apply_test(test, subject, c, line);
      }
      if (ok == want) out.push_back(x);
    }
    return Value::list_of(std::move(out));
  }
  if (name == "attr") {
    const Value* n = a.get(0, "name");
    if (!n || !n->is_string()) in.error(line, "attr needs a name");
    return in.get_attr(v, n->s, line);
  }
  if (name == "int") {
    const int64_t dflt = int_arg(a, 0, "default", 0);
    if (v.t == Value::T::kInt) return v;
    if (v.t == Value::T::kBool) return Value::integer(v.b);
    if (v.t == Value::T::kFloat) return Value::integer(static_cast<int64_t>(v.f));
    if (v.is_string()) {
      try {
        size_t used = 0;
        const std::string s = py_strip(v.s, nullptr, true, true);
        const double d = std::stod(s, &used);
        if (used == s.size()) return Value::integer(static_cast<int64_t>(d));
      } catch (const std::exception&) {
      }
    }
    return Value::integer(dflt);
  }
  if (name == "float") {
    if (v.is_number()) return Value::number(v.as_double());
    if (v.is_string()) {
      try {
        return Value::number(std::stod(v.s));
      } catch (const std::exception&) {
      }
    }
    const Value* dflt = a.get(0, "default");
    return dflt ? *dflt : Value::number(0.0);
  }
  if (name == "abs") {
    if (v.t == Value::T::kInt) return Value::integer(v.i < 0 ? -v.i : v.i);
    if (v.is_number()) return Value::number(std::fabs(v.as_double()));
    in.error(line, "bad operand type for abs()");
  }
  if (name == "round") {
    const int64_t precision = int_arg(a, 0, "precision", 0);
    const Value* m = a.get(1, "method");
    const std::string meth = m && m->is_string() ? m->s : "common";
    const double scale = std::pow(10.0, static_cast<double>(precision));
    double x = v.as_double() * scale;
    // "common" is Python's round(): ties to even.
    x = meth == "ceil" ? std::ceil(x) : meth == "floor" ? std::floor(x) : std::nearbyint(x);
    return Value::number(x / scale);
  }
  if (name == "replace") {
    CallArgs c = a;
    return in.call(bound_method(in, Value::string(need_str()), "replace", line), c, line);
  }
  if (name == "indent") {
    const std::string s = to_str(v);
    const Value* w = a.get(0, "width");
    const std::string pad = w && w->is_string()
                                ? w->s
                                : std::string(static_cast<size_t>(int_arg(a, 0, "width", 4)), ' ');
    const bool first = bool_arg(a, 1, "first", false);
    const bool blank = bool_arg(a, 2, "blank", false);
    std::string out;
    size_t pos = 0;
    bool is_first = true;
    while (true) {
      const size_t nl = s.find('\n', pos);
      const std::string ln = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      if ((!is_first || first) && (blank || !ln.empty())) out += pad;
      out += ln;
      if (nl == std::string::npos) break;
      out += '\n';
      pos = nl + 1;
      is_first = false;
    }
    return Value::string(out);
  }
  if (name == "wordcount")
    return Value::integer(static_cast<int64_t>(py_split(to_str(v), nullptr, -1).size()));
  if (name == "escape" || name == "e" || name == "forceescape")
    return Value::string(html_escape(to_str(v)));
  if (name == "center") {
    const std::string s = to_str(v);
    const int64_t width = int_arg(a, 0, "width", 80);
    const int64_t len = static_cast<int64_t>(py_len(Value::string(s)));
    if (width <= len) return Value::string(s);
    const int64_t total = width - len, left = total / 2 + (total & width & 1);
    return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                         std::string(static_cast<size_t>(total - left), ' '));
  }
  if (name == "sum") {
    const Value* attr = a.get(0, "attribute");
    Value acc = Value::integer(int_arg(a, 1, "start", 0));
    for (const auto& x : in.iterate(v, line)) {
      const Value y = attr && attr->is_string() ? attr_path(in, x, attr->s, line) : x;
      if (!y.is_number()) in.error(line, "sum: unsupported operand type");
      acc = acc.t == Value::T::kFloat || y.t == Value::T::kFloat
                ? Value::number(acc.as_double() + y.as_double())
                : Value::integer(acc.i + (y.t == Value::T::kBool ? y.b : y.i));
    }
    return acc;
  }
  if (name == "min" || name == "max") {
    const List items = in.iterate(v, line);
    if (items.empty()) return Value::undefined("no min/max item, sequence was empty");
    Value best = items[0];
    for (const auto& x : items) {
      int c;
      try {
        c = compare_values(x, best);
      } catch (const std::invalid_argument& e) {
        in.error(line, e.what());
      }
      if (name == "min" ? c < 0 : c > 0) best = x;
    }
    return best;
  }
  if (name == "batch") {
    const int64_t n = int_arg(a, 0, "linecount", 1);
    if (n <= 0) in.error(line, "batch size must be positive");
    List out, cur;
    for (const auto& x : in.iterate(v, line)) {
      cur.push_back(x);
      if (static_cast<int64_t>(cur.size()) == n) {
        out.push_back(Value::list_of(std::move(cur)));
        cur.clear();
      }
    }
    if (!cur.empty()) out.push_back(Value::list_of(std::move(cur)));
    return Value::list_of(std::move(out));
  }
  found = false;
  return Value();
}

}  // namespace shardlm::text::jinja
