// Jinja values (see value.h): constructors, Python-style printing, JSON dumping, comparisons.
#include "runtime/text/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace shardlm::text::jinja {

Value Value::list_of(List items) {
  Value v = make(T::kList);
  v.list = std::make_shared<List>(std::move(items));
  return v;
}

Value Value::tuple_of(List items) {
  Value v = list_of(std::move(items));
  v.tuple = true;
  return v;
}

Value Value::dict_of(std::shared_ptr<Dict> d) {
  Value v = make(T::kDict);
  v.dict = std::move(d);
  return v;
}

Value Value::function(std::string name, std::function<Value(CallArgs&)> fn) {
  Value v = make(T::kFunc);
  v.func = std::make_shared<Func>(Func{std::move(name), std::move(fn)});
  return v;
}

bool Value::truthy() const {
  switch (t) {
    case T::kUndefined:
    case T::kNone:
      return false;
    case T::kBool:
      return b;
    case T::kInt:
      return i != 0;
    case T::kFloat:
      return f != 0.0;
    case T::kString:
      return !s.empty();
    case T::kList:
      return !list->empty();
    case T::kDict:
      return dict->is_namespace || !dict->items.empty();
    case T::kFunc:
      return true;
  }
  return false;
}

double Value::as_double() const {
  if (t == T::kInt) return static_cast<double>(i);
  if (t == T::kBool) return b ? 1.0 : 0.0;
  return f;
}

const char* Value::type_name() const {
  switch (t) {
    case T::kUndefined:
      return "Undefined";
    case T::kNone:
      return "NoneType";
    case T::kBool:
      return "bool";
    case T::kInt:
      return "int";
    case T::kFloat:
      return "float";
    case T::kString:
      return "str";
    case T::kList:
      return "list";
    case T::kDict:
      return dict->is_namespace ? "Namespace" : "dict";
    case T::kFunc:
      return "function";
  }
  return "?";
}

const Value* Dict::find(const std::string& key) const {
  for (const auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  for (auto& kv : items) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  }
  items.emplace_back(key, std::move(v));
}

const Value* CallArgs::kwarg(const std::string& name) const {
  for (const auto& kv : kwargs)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

const Value* CallArgs::get(size_t index, const std::string& name) const {
  if (index < args.size()) return &args[index];
  return kwarg(name);
}

std::string float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
  if (x == 0.0) return std::signbit(x) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // d.ddde[+-]XX
  const bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  const size_t epos = sci.find('e');
  std::string digits = sci.substr(0, epos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(sci.substr(epos + 1));
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += e;
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else {
    const size_t int_len = static_cast<size_t>(exp) + 1;
    if (digits.size() <= int_len) {
      out = digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return neg ? "-" + out : out;
}

namespace {
std::string py_quote(const std::string& s) {
  // Python repr of a str: prefer single quotes unless the string has ' and no ".
  const bool has_sq = s.find('\'') != std::string::npos;
  const bool has_dq = s.find('"') != std::string::npos;
  const char q = (has_sq && !has_dq) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
  return out;
}

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void json_dump(const Value& v, int indent, bool sort_keys, int level, std::string& out) {
  auto newline = [&](int lvl) {
    out += '\n';
    out.append(static_cast<size_t>(indent * lvl), ' ');
  };
  switch (v.t) {
    case Value::T::kUndefined:
    case Value::T::kNone:
      out += "null";
      return;
    case Value::T::kBool:
      out += v.b ? "true" : "false";
      return;
    case Value::T::kInt:
      out += std::to_string(v.i);
      return;
    case Value::T::kFloat:
      if (std::isnan(v.f))
        out += "NaN";
      else if (std::isinf(v.f))
        out += v.f < 0 ? "-Infinity" : "Infinity";
      else
        out += float_repr(v.f);
      return;
    case Value::T::kString:
      json_string(v.s, out);
      return;
    case Value::T::kFunc:
      out += "null";
      return;
    case Value::T::kList: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(level + 1);
        json_dump((*v.list)[k], indent, sort_keys, level + 1, out);
      }
      if (indent >= 0) newline(level);
      out += ']';
      return;
    }
    case Value::T::kDict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      if (sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(level + 1);
        json_string(items[k]->first, out);
        out += ": ";
        json_dump(items[k]->second, indent, sort_keys, level + 1, out);
      }
      if (indent >= 0) newline(level);
      out += '}';
      return;
    }
  }
}
}  // namespace

std::string to_json(const Value& v, int indent, bool sort_keys) {
  std::string out;
  json_dump(v, indent, sort_keys, 0, out);
  return out;
}

std::string to_repr(const Value& v) {
  switch (v.t) {
    case Value::T::kString:
      return py_quote(v.s);
    case Value::T::kList: {
      std::string out = v.tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        out += to_repr((*v.list)[k]);
      }
      if (v.tuple && v.list->size() == 1) out += ",";
      return out + (v.tuple ? ")" : "]");
    }
    case Value::T::kDict: {
      if (v.dict->is_namespace) return "<Namespace>";
      std::string out = "{";
      for (size_t k = 0; k < v.dict->items.size(); ++k) {
        if (k) out += ", ";
        out += py_quote(v.dict->items[k].first) + ": " + to_repr(v.dict->items[k].second);
      }
      return out + "}";
    }
    default:
      return to_str(v);
  }
}

std::string to_str(const Value& v) {
  switch (v.t) {
    case Value::T::kUndefined:
      return "";
    case Value::T::kNone:
      return "None";
    case Value::T::kBool:
      return v.b ? "True" : "False";
    case Value::T::kInt:
      return std::to_string(v.i);
    case Value::T::kFloat:
      return float_repr(v.f);
    case Value::T::kString:
      return v.s;
    case Value::T::kFunc:
      return "<function " + v.func->name + ">";
    default:
      return to_repr(v);
  }
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.t == Value::T::kFloat || b.t == Value::T::kFloat) return a.as_double() == b.as_double();
    const int64_t x = a.t == Value::T::kBool ? a.b : a.i;
    const int64_t y = b.t == Value::T::kBool ? b.b : b.i;
    return x == y;
  }
  if (a.t != b.t) return false;
  switch (a.t) {
    case Value::T::kUndefined:
    case Value::T::kNone:
      return true;
    case Value::T::kString:
      return a.s == b.s;
    case Value::T::kList:
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!values_equal((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case Value::T::kDict:
      if (a.dict == b.dict) return true;
      if (a.dict->is_namespace || b.dict->is_namespace) return false;
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& kv : a.dict->items) {
        const Value* o = b.dict->find(kv.first);
        if (!o || !values_equal(kv.second, *o)) return false;
      }
      return true;
    case Value::T::kFunc:
      return a.func == b.func;
    default:
      return false;
  }
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.as_double(), y = b.as_double();
    if (a.t != Value::T::kFloat && b.t != Value::T::kFloat) {
      const int64_t p = a.t == Value::T::kBool ? a.b : a.i, q = b.t == Value::T::kBool ? b.b : b.i;
      return p < q ? -1 : p > q ? 1 : 0;
    }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.s.compare(b.s);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_list() && b.is_list()) {
    const size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k) {
      if (!values_equal((*a.list)[k], (*b.list)[k]))
        return compare_values((*a.list)[k], (*b.list)[k]);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  throw std::invalid_argument(std::string("'<' not supported between instances of '") +
                              a.type_name() + "' and '" + b.type_name() + "'");
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::integer(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float:
      return Value::number(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return Value::list_of(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it)
        d->items.emplace_back(it.key(), from_json(it.value()));
      return Value::dict_of(std::move(d));
    }
    default:
      return Value::none();
  }
}

}  // namespace shardlm::text::jinja
