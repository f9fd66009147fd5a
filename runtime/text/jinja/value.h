// Values of the sandboxed Jinja renderer: undefined, none, bool, int, float, string, list, dict
// (insertion-ordered; also used for namespace() objects and the loop variable) and callables.
// Lists and dicts are shared by pointer and never mutated by templates (the environment is
// immutable, like jinja2's ImmutableSandboxedEnvironment), except namespace attributes.
// Python semantics for printing (str/repr), truthiness, equality and ordering.
// Not the renderer itself: see interpreter.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace shardlm::text::jinja {

struct Value;
using List = std::vector<Value>;
struct Dict;
struct CallArgs;
struct Func {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

struct Value {
  enum class T : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunc };
  T t = T::kUndefined;
  bool b = false;
  bool tuple = false;  // a list that prints as a Python tuple: (1, 2)
  int64_t i = 0;
  double f = 0.0;
  std::string s;  // string payload; for undefined: a hint naming what was missing
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;
  std::shared_ptr<Func> func;

  static Value undefined(std::string hint = "") {
    Value v;
    v.s = std::move(hint);
    return v;
  }
  static Value none() { return make(T::kNone); }
  static Value boolean(bool x) {
    Value v = make(T::kBool);
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v = make(T::kInt);
    v.i = x;
    return v;
  }
  static Value number(double x) {
    Value v = make(T::kFloat);
    v.f = x;
    return v;
  }
  static Value string(std::string x) {
    Value v = make(T::kString);
    v.s = std::move(x);
    return v;
  }
  static Value list_of(List items);
  static Value tuple_of(List items);
  static Value dict_of(std::shared_ptr<Dict> d);
  static Value function(std::string name, std::function<Value(CallArgs&)> fn);

  bool is_undefined() const { return t == T::kUndefined; }
  bool is_none() const { return t == T::kNone; }
  bool is_string() const { return t == T::kString; }
  bool is_number() const { return t == T::kInt || t == T::kFloat || t == T::kBool; }
  bool is_list() const { return t == T::kList; }
  bool is_dict() const { return t == T::kDict; }
  bool is_func() const { return t == T::kFunc; }

  bool truthy() const;
  double as_double() const;
  const char* type_name() const;  // Python type name: 'str', 'int', 'dict', ...

 private:
  static Value make(T t) {
    Value v;
    v.t = t;
    return v;
  }
};

struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};

// Arguments of a call, with the template line for error messages.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  int line = 0;
  const Value* kwarg(const std::string& name) const;
  // Positional index or keyword `name`, else nullptr.
  const Value* get(size_t index, const std::string& name) const;
};

// Python str() and repr().
std::string to_str(const Value& v);
std::string to_repr(const Value& v);
// Python float repr ("1.0", "0.1", "1e+16").
std::string float_repr(double x);
// json.dumps(v, ensure_ascii=False, indent=indent (<0: None), sort_keys=sort_keys).
std::string to_json(const Value& v, int indent, bool sort_keys);

bool values_equal(const Value& a, const Value& b);
// Python ordering: -1, 0, 1; throws std::invalid_argument when the types do not order.
int compare_values(const Value& a, const Value& b);

// Conversions from/to nlohmann JSON (ordered keys are preserved).
Value from_json(const nlohmann::ordered_json& j);

}  // namespace shardlm::text::jinja
