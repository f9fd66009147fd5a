// Chat-template evaluator (see interpreter.h). Scoping follows Jinja: {% for %} bodies and
// macro calls get their own frame, {% if %} does not; namespace() objects carry state out of
// loops. Operators follow Python semantics on the value types of value.h.
#include "runtime/text/jinja/interpreter.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "runtime/core/status.h"
#include "runtime/text/utf8.h"

namespace shardlm::text::jinja {

const Value* Frame::lookup(const std::string& name) const {
  for (const Frame* f = this; f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(const Limits& limits, std::shared_ptr<Frame> globals)
    : limits_(limits), globals_(std::move(globals)) {}

void Interpreter::error(int line, const std::string& msg) const {
  fail(StatusCode::kInvalidArg, "chat template line " + std::to_string(line) + ": " + msg);
}

void Interpreter::count_iterations(size_t n, int line) {
  iterations_ += n;
  if (iterations_ > limits_.max_loop_iterations)
    error(line,
          "loop iteration limit (" + std::to_string(limits_.max_loop_iterations) + ") exceeded");
}

void Interpreter::append(std::string& out, const std::string& s, int line) {
  if (out.size() + s.size() > limits_.max_output_bytes)
    error(line,
          "output size limit (" + std::to_string(limits_.max_output_bytes) + " bytes) exceeded");
  out += s;
}

std::string Interpreter::render(const std::vector<NodePtr>& body) {
  struct BreakCycles {  // runs on return and on a template error alike
    std::vector<std::shared_ptr<Dict>>& namespaces;
    std::unordered_set<const Dict*>& set;
    ~BreakCycles() {
      for (const auto& d : namespaces) d->items.clear();
      namespaces.clear();
      set.clear();
    }
  } break_cycles{assigned_namespaces_, assigned_set_};
  auto root = std::make_shared<Frame>();
  root->parent = globals_;
  std::string out;
  exec_body(body, root, out);
  return out;
}

Interpreter::Flow Interpreter::exec_body(const std::vector<NodePtr>& body,
                                         std::shared_ptr<Frame>& frame, std::string& out) {
  for (const auto& n : body) {
    const Flow f = exec(*n, frame, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Node& n, std::shared_ptr<Frame>& frame,
                                    std::string& out) {
  switch (n.kind) {
    case NK::kData:
      append(out, n.name, n.line);
      return Flow::kNormal;
    case NK::kPrint:
      append(out, to_str(eval(*n.a, frame)), n.line);
      return Flow::kNormal;
    case NK::kIf:
      return exec_body(eval(*n.a, frame).truthy() ? n.body : n.else_body, frame, out);
    case NK::kFor:
      exec_for(n, frame, out);
      return Flow::kNormal;
    case NK::kSet:
      assign(*n.target, eval(*n.a, frame), frame);
      return Flow::kNormal;
    case NK::kSetBlock:
    case NK::kFilterBlock: {
      std::string inner;
      exec_body(n.body, frame, inner);
      Value v = Value::string(std::move(inner));
      if (n.b) {
        // Apply the chain innermost-first: the chain's operands are nested kFilter nodes.
        std::vector<const Node*> chain;
        for (const Node* f = n.b.get(); f; f = f->a.get()) chain.push_back(f);
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
          CallArgs args;
          args.line = (*it)->line;
          for (const auto& k : (*it)->kids) args.args.push_back(eval(*k, frame));
          for (const auto& kv : (*it)->kwargs)
            args.kwargs.emplace_back(kv.first, eval(*kv.second, frame));
          v = apply_filter((*it)->name, v, args, (*it)->line);
        }
      }
      if (n.kind == NK::kSetBlock) {
        assign(*n.target, v, frame);
      } else {
        append(out, to_str(v), n.line);
      }
      return Flow::kNormal;
    }
    case NK::kMacro:
      frame->vars[n.name] = make_macro(n, frame);
      return Flow::kNormal;
    case NK::kCallBlock: {
      const Node& call_node = *n.a;
      Value callee = eval(*call_node.a, frame);
      CallArgs args;
      args.line = n.line;
      for (const auto& k : call_node.kids) args.args.push_back(eval(*k, frame));
      for (const auto& kv : call_node.kwargs)
        args.kwargs.emplace_back(kv.first, eval(*kv.second, frame));
      args.kwargs.emplace_back("caller", make_macro(n, frame));
      append(out, to_str(call(callee, args, n.line)), n.line);
      return Flow::kNormal;
    }
    case NK::kBreak:
      return Flow::kBreak;
    case NK::kContinue:
      return Flow::kContinue;
    case NK::kDo:
      eval(*n.a, frame);
      return Flow::kNormal;
    default:
      error(n.line, "internal: expression used as statement");
  }
}

Value Interpreter::make_macro(const Node& n, std::shared_ptr<Frame> frame) {
  const Node* node = &n;
  std::weak_ptr<Frame> weak = frame;  // frames own macros; avoid a reference cycle
  const std::string name = n.kind == NK::kMacro ? n.name : "caller";
  return Value::function(name, [this, node, weak, name](CallArgs& args) -> Value {
    std::shared_ptr<Frame> def = weak.lock();
    if (++depth_ > limits_.max_call_depth) {
      --depth_;
      error(args.line, "call depth limit (" + std::to_string(limits_.max_call_depth) +
                           ") exceeded in '" + name + "'");
    }
    auto f = std::make_shared<Frame>();
    f->parent = def ? def : globals_;
    if (args.args.size() > node->params.size())
      error(args.line,
            "macro '" + name + "' takes " + std::to_string(node->params.size()) + " arguments");
    for (size_t k = 0; k < node->params.size(); ++k) {
      const std::string& p = node->params[k];
      if (k < args.args.size()) {
        f->vars[p] = args.args[k];
      } else if (const Value* kw = args.kwarg(p)) {
        f->vars[p] = *kw;
      } else if (node->defaults[k]) {
        f->vars[p] = eval(*node->defaults[k], f);
      } else {
        f->vars[p] = Value::undefined("'" + p + "' is undefined");
      }
    }
    if (const Value* c = args.kwarg("caller")) f->vars["caller"] = *c;
    std::string out;
    try {
      exec_body(node->body, f, out);
    } catch (...) {
      --depth_;
      throw;
    }
    --depth_;
    return Value::string(std::move(out));
  });
}

void Interpreter::exec_for(const Node& n, std::shared_ptr<Frame>& frame, std::string& out) {
  const Value seq = eval(*n.a, frame);
  List items = iterate(seq, n.line);
  if (n.b) {
    List kept;
    for (auto& item : items) {
      auto f = std::make_shared<Frame>();
      f->parent = frame;
      assign(*n.target, item, f);
      if (eval(*n.b, f).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  count_iterations(items.size() + 1, n.line);
  if (items.empty()) {
    auto f = std::make_shared<Frame>();
    f->parent = frame;
    exec_body(n.else_body, f, out);
    return;
  }
  const int64_t len = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < len; ++k) {
    auto f = std::make_shared<Frame>();
    f->parent = frame;
    auto loop = std::make_shared<Dict>();
    loop->is_namespace = true;
    loop->items.reserve(12);
    loop->items.emplace_back("index0", Value::integer(k));
    loop->items.emplace_back("index", Value::integer(k + 1));
    loop->items.emplace_back("revindex0", Value::integer(len - k - 1));
    loop->items.emplace_back("revindex", Value::integer(len - k));
    loop->items.emplace_back("first", Value::boolean(k == 0));
    loop->items.emplace_back("last", Value::boolean(k == len - 1));
    loop->items.emplace_back("length", Value::integer(len));
    loop->items.emplace_back("depth", Value::integer(1));
    loop->items.emplace_back("depth0", Value::integer(0));
    loop->items.emplace_back("previtem",
                             k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
    loop->items.emplace_back(
        "nextitem", k + 1 < len ? items[k + 1] : Value::undefined("there is no next item"));
    loop->items.emplace_back("cycle", Value::function("cycle", [k, this](CallArgs& a) -> Value {
                               if (a.args.empty()) error(a.line, "no items for cycling given");
                               return a.args[static_cast<size_t>(k) % a.args.size()];
                             }));
    f->vars["loop"] = Value::dict_of(loop);
    assign(*n.target, items[k], f);
    const Flow flow = exec_body(n.body, f, out);
    if (flow == Flow::kBreak) break;
  }
}

void Interpreter::assign(const Node& target, const Value& v, std::shared_ptr<Frame>& frame) {
  if (target.kind == NK::kName) {
    frame->vars[target.name] = v;
    return;
  }
  if (target.kind == NK::kGetAttr) {
    const Value* ns = target.a->kind == NK::kName ? frame->lookup(target.a->name) : nullptr;
    if (!ns || !ns->is_dict() || !ns->dict->is_namespace)
      error(target.line, "can only assign attributes of namespace() objects");
    if (assigned_set_.insert(ns->dict.get()).second) assigned_namespaces_.push_back(ns->dict);
    ns->dict->set(target.name, v);
    return;
  }
  if (target.kind == NK::kTuple) {
    List items = iterate(v, target.line);
    if (items.size() != target.kids.size())
      error(target.line, "cannot unpack " + std::to_string(items.size()) + " values into " +
                             std::to_string(target.kids.size()) + " names");
    for (size_t k = 0; k < items.size(); ++k) assign(*target.kids[k], items[k], frame);
    return;
  }
  error(target.line, "cannot assign to this expression");
}

List Interpreter::iterate(const Value& v, int line) {
  switch (v.t) {
    case Value::T::kUndefined:
      return {};
    case Value::T::kList:
      return *v.list;
    case Value::T::kDict: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Value::T::kString: {
      List chars;
      size_t i = 0;
      while (i < v.s.size()) {
        size_t n = utf8_valid_len(v.s, i);
        if (n == 0) n = 1;
        chars.push_back(Value::string(v.s.substr(i, n)));
        i += n;
      }
      return chars;
    }
    default:
      error(line, std::string("'") + v.type_name() + "' object is not iterable");
  }
}

Value Interpreter::get_attr(const Value& obj, const std::string& name, int line) {
  if (obj.is_undefined()) {
    error(line, (obj.s.empty() ? std::string("value is undefined") : obj.s) +
                    " (while looking up attribute '" + name + "')");
  }
  if (obj.is_dict()) {
    if (!obj.dict->is_namespace) {
      Value m = bound_method(*this, obj, name, line);
      if (!m.is_undefined()) return m;
    }
    if (const Value* v = obj.dict->find(name)) return *v;
    return Value::undefined(std::string("'") + obj.type_name() + " object' has no attribute '" +
                            name + "'");
  }
  Value m = bound_method(*this, obj, name, line);
  if (!m.is_undefined()) return m;
  return Value::undefined(std::string("'") + obj.type_name() + " object' has no attribute '" +
                          name + "'");
}

Value Interpreter::get_item(const Value& obj, const Value& key, int line) {
  if (obj.is_undefined()) {
    error(line, (obj.s.empty() ? std::string("value is undefined") : obj.s) +
                    " (while looking up item " + to_repr(key) + ")");
  }
  if (obj.is_list() && (key.t == Value::T::kInt || key.t == Value::T::kBool)) {
    int64_t k = key.t == Value::T::kInt ? key.i : key.b;
    const int64_t n = static_cast<int64_t>(obj.list->size());
    if (k < 0) k += n;
    if (k < 0 || k >= n)
      return Value::undefined(std::string("list index ") + to_str(key) + " out of range");
    return (*obj.list)[static_cast<size_t>(k)];
  }
  if (obj.is_string() && key.t == Value::T::kInt) {
    List chars = iterate(obj, line);
    int64_t k = key.i;
    const int64_t n = static_cast<int64_t>(chars.size());
    if (k < 0) k += n;
    if (k < 0 || k >= n) return Value::undefined("string index out of range");
    return chars[static_cast<size_t>(k)];
  }
  if (obj.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = obj.dict->find(key.s)) return *v;
      if (!obj.dict->is_namespace) {
        Value m = bound_method(*this, obj, key.s, line);
        if (!m.is_undefined()) return m;
      }
    } else {
      if (const Value* v = obj.dict->find(to_str(key))) return *v;
    }
    return Value::undefined(std::string("'") + obj.type_name() + " object' has no attribute " +
                            to_repr(key));
  }
  if (key.is_string()) return get_attr(obj, key.s, line);
  return Value::undefined(std::string("'") + obj.type_name() + " object' has no item " +
                          to_repr(key));
}

Value Interpreter::call(const Value& callee, CallArgs& args, int line) {
  args.line = line;
  if (callee.is_func()) return callee.func->fn(args);
  if (callee.is_undefined())
    error(line, (callee.s.empty() ? std::string("value is undefined") : callee.s) +
                    " (called as a function)");
  error(line, std::string("'") + callee.type_name() + "' object is not callable");
}

Value Interpreter::apply_filter(const std::string& name, const Value& v, CallArgs& args, int line) {
  bool found = false;
  Value r = builtin_filter(*this, name, v, args, line, found);
  if (!found) error(line, "no filter named '" + name + "'");
  return r;
}

bool Interpreter::apply_test(const std::string& name, const Value& v, CallArgs& args, int line) {
  bool found = false;
  const bool r = builtin_test(*this, name, v, args, line, found);
  if (!found) error(line, "no test named '" + name + "'");
  return r;
}

namespace {
int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
int64_t as_int(const Value& v) {
  return v.t == Value::T::kBool ? v.b : v.i;
}
bool is_intlike(const Value& v) {
  return v.t == Value::T::kInt || v.t == Value::T::kBool;
}
}  // namespace

Value Interpreter::eval_binary(const Node& n, const Value& a, const Value& b) {
  const std::string& op = n.name;
  if (op == "~") return Value::string(to_str(a) + to_str(b));
  if (a.is_undefined() || b.is_undefined()) {
    const Value& u = a.is_undefined() ? a : b;
    error(n.line,
          (u.s.empty() ? std::string("value is undefined") : u.s) + " (used with '" + op + "')");
  }
  auto type_err = [&]() -> Value {
    error(n.line, "unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
                      b.type_name() + "'");
  };
  // Python's integers do not overflow; ours are 64-bit, so a result out of range is an error.
  auto checked = [&](bool overflow, int64_t r) -> Value {
    if (overflow) error(n.line, "integer result of '" + op + "' does not fit in 64 bits");
    return Value::integer(r);
  };
  if (op == "+") {
    if (is_intlike(a) && is_intlike(b)) {
      int64_t r = 0;
      const bool overflow = __builtin_add_overflow(as_int(a), as_int(b), &r);
      return checked(overflow, r);
    }
    if (a.is_number() && b.is_number()) return Value::number(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
    if (a.is_list() && b.is_list()) {
      List r = *a.list;
      r.insert(r.end(), b.list->begin(), b.list->end());
      return Value::list_of(std::move(r));
    }
    return type_err();
  }
  if (op == "-") {
    if (is_intlike(a) && is_intlike(b)) {
      int64_t r = 0;
      const bool overflow = __builtin_sub_overflow(as_int(a), as_int(b), &r);
      return checked(overflow, r);
    }
    if (a.is_number() && b.is_number()) return Value::number(a.as_double() - b.as_double());
    return type_err();
  }
  if (op == "*") {
    if (is_intlike(a) && is_intlike(b)) {
      int64_t r = 0;
      const bool overflow = __builtin_mul_overflow(as_int(a), as_int(b), &r);
      return checked(overflow, r);
    }
    if (a.is_number() && b.is_number()) return Value::number(a.as_double() * b.as_double());
    const Value* seq = a.is_string() || a.is_list()     ? &a
                       : (b.is_string() || b.is_list()) ? &b
                                                        : nullptr;
    const Value* cnt = seq == &a ? &b : &a;
    if (seq && is_intlike(*cnt)) {
      const int64_t times = std::max<int64_t>(0, as_int(*cnt));
      const size_t unit = seq->is_string() ? seq->s.size() : seq->list->size();
      if (static_cast<double>(unit) * static_cast<double>(times) >
          static_cast<double>(limits_.max_output_bytes))
        error(n.line, "repetition result too large");
      if (seq->is_string()) {
        std::string r;
        for (int64_t k = 0; k < times; ++k) r += seq->s;
        return Value::string(std::move(r));
      }
      List r;
      for (int64_t k = 0; k < times; ++k) r.insert(r.end(), seq->list->begin(), seq->list->end());
      return Value::list_of(std::move(r));
    }
    return type_err();
  }
  if (op == "/") {
    if (!a.is_number() || !b.is_number()) return type_err();
    if (b.as_double() == 0.0) error(n.line, "division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (!a.is_number() || !b.is_number()) {
      if (op == "%" && a.is_string()) {
        // printf-style: only %s and %d with a single value or a list of values
        List vals = b.is_list() ? *b.list : List{b};
        std::string r;
        size_t vi = 0;
        for (size_t k = 0; k < a.s.size(); ++k) {
          if (a.s[k] == '%' && k + 1 < a.s.size()) {
            const char c = a.s[++k];
            if (c == '%') {
              r += '%';
              continue;
            }
            if (vi >= vals.size()) error(n.line, "not enough arguments for format string");
            if (c == 'r')
              r += to_repr(vals[vi++]);
            else
              r += to_str(vals[vi++]);
            continue;
          }
          r += a.s[k];
        }
        return Value::string(std::move(r));
      }
      return type_err();
    }
    if (b.as_double() == 0.0) error(n.line, "division by zero");
    if (is_intlike(a) && is_intlike(b)) {
      const int64_t x = as_int(a), y = as_int(b);
      if (x == INT64_MIN && y == -1) checked(true, 0);  // the one quotient out of range
      const int64_t q = floordiv(x, y);
      return Value::integer(op == "//" ? q : x - q * y);
    }
    const double x = a.as_double(), y = b.as_double();
    const double q = std::floor(x / y);
    return Value::number(op == "//" ? q : x - q * y);
  }
  if (op == "**") {
    if (!a.is_number() || !b.is_number()) return type_err();
    if (is_intlike(a) && is_intlike(b) && as_int(b) >= 0) {
      // Square and multiply: with |base| >= 2 a big exponent overflows within 63 squarings.
      int64_t base = as_int(a), e = as_int(b), r = 1;
      bool overflow = false;
      while (e > 0 && !overflow) {
        if (e & 1) overflow = __builtin_mul_overflow(r, base, &r);
        e >>= 1;
        if (e > 0 && !overflow) overflow = __builtin_mul_overflow(base, base, &base);
      }
      return checked(overflow, r);
    }
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  error(n.line, "unknown operator " + op);
}

namespace {
bool contains(Interpreter& in, const Value& item, const Value& seq, int line) {
  if (seq.is_string()) {
    if (!item.is_string()) in.error(line, "'in <string>' requires string as left operand");
    return seq.s.find(item.s) != std::string::npos;
  }
  if (seq.is_list()) {
    for (const auto& x : *seq.list)
      if (values_equal(x, item)) return true;
    return false;
  }
  if (seq.is_dict()) return item.is_string() && seq.dict->find(item.s) != nullptr;
  if (seq.is_undefined()) return false;
  in.error(line, std::string("argument of type '") + seq.type_name() + "' is not iterable");
}
}  // namespace

Value Interpreter::eval(const Node& n, std::shared_ptr<Frame>& frame) {
  switch (n.kind) {
    case NK::kLiteral:
      return n.literal;
    case NK::kName: {
      const Value* v = frame->lookup(n.name);
      return v ? *v : Value::undefined("'" + n.name + "' is undefined");
    }
    case NK::kList:
    case NK::kTuple: {
      List items;
      for (const auto& k : n.kids) items.push_back(eval(*k, frame));
      return n.kind == NK::kTuple ? Value::tuple_of(std::move(items))
                                  : Value::list_of(std::move(items));
    }
    case NK::kDict: {
      auto d = std::make_shared<Dict>();
      for (size_t k = 0; k + 1 < n.kids.size(); k += 2) {
        const Value key = eval(*n.kids[k], frame);
        d->set(key.is_string() ? key.s : to_str(key), eval(*n.kids[k + 1], frame));
      }
      return Value::dict_of(std::move(d));
    }
    case NK::kGetAttr:
      return get_attr(eval(*n.a, frame), n.name, n.line);
    case NK::kGetItem:
      return get_item(eval(*n.a, frame), eval(*n.b, frame), n.line);
    case NK::kSlice: {
      const Value obj = eval(*n.a, frame);
      Value parts[3];
      for (int k = 0; k < 3; ++k) {
        if (n.kids[k]) parts[k] = eval(*n.kids[k], frame);
        if (!parts[k].is_undefined() && !parts[k].is_none() && !is_intlike(parts[k]))
          error(n.line, "slice indices must be integers or None");
      }
      if (!obj.is_list() && !obj.is_string())
        error(n.line, std::string("'") + obj.type_name() + "' object is not subscriptable");
      List items = obj.is_list() ? *obj.list : iterate(obj, n.line);
      const int64_t len = static_cast<int64_t>(items.size());
      const bool has[3] = {!parts[0].is_undefined() && !parts[0].is_none(),
                           !parts[1].is_undefined() && !parts[1].is_none(),
                           !parts[2].is_undefined() && !parts[2].is_none()};
      const int64_t step = has[2] ? as_int(parts[2]) : 1;
      if (step == 0) error(n.line, "slice step cannot be zero");
      auto clamp = [&](int64_t v, bool neg_step) {
        if (v < 0) v += len;
        if (neg_step) return std::min<int64_t>(std::max<int64_t>(v, -1), len - 1);
        return std::min<int64_t>(std::max<int64_t>(v, 0), len);
      };
      int64_t start, stop;
      if (step > 0) {
        start = has[0] ? clamp(as_int(parts[0]), false) : 0;
        stop = has[1] ? clamp(as_int(parts[1]), false) : len;
      } else {
        start = has[0] ? clamp(as_int(parts[0]), true) : len - 1;
        stop = has[1] ? clamp(as_int(parts[1]), true) : -1;
      }
      List out;
      for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step)
        out.push_back(items[static_cast<size_t>(k)]);
      if (obj.is_string()) {
        std::string s;
        for (const auto& c : out) s += c.s;
        return Value::string(std::move(s));
      }
      return Value::list_of(std::move(out));
    }
    case NK::kCall: {
      const Value callee = eval(*n.a, frame);
      CallArgs args;
      args.line = n.line;
      for (const auto& k : n.kids) args.args.push_back(eval(*k, frame));
      for (const auto& kv : n.kwargs) args.kwargs.emplace_back(kv.first, eval(*kv.second, frame));
      return call(callee, args, n.line);
    }
    case NK::kFilter: {
      if (!n.a) error(n.line, "filter without operand");
      const Value v = eval(*n.a, frame);
      CallArgs args;
      args.line = n.line;
      for (const auto& k : n.kids) args.args.push_back(eval(*k, frame));
      for (const auto& kv : n.kwargs) args.kwargs.emplace_back(kv.first, eval(*kv.second, frame));
      return apply_filter(n.name, v, args, n.line);
    }
    case NK::kTest: {
      const Value v = eval(*n.a, frame);
      CallArgs args;
      args.line = n.line;
      for (const auto& k : n.kids) args.args.push_back(eval(*k, frame));
      for (const auto& kv : n.kwargs) args.kwargs.emplace_back(kv.first, eval(*kv.second, frame));
      const bool r = apply_test(n.name, v, args, n.line);
      return Value::boolean(n.negate ? !r : r);
    }
    case NK::kUnary: {
      const Value v = eval(*n.a, frame);
      if (n.name == "not") return Value::boolean(!v.truthy());
      if (v.t == Value::T::kInt || v.t == Value::T::kBool) {
        if (n.name == "-" && as_int(v) == INT64_MIN)
          error(n.line, "integer result of unary '-' does not fit in 64 bits");
        return Value::integer(n.name == "-" ? -as_int(v) : as_int(v));
      }
      if (v.t == Value::T::kFloat) return Value::number(n.name == "-" ? -v.f : v.f);
      error(n.line,
            std::string("bad operand type for unary ") + n.name + ": '" + v.type_name() + "'");
    }
    case NK::kBinary:
      return eval_binary(n, eval(*n.a, frame), eval(*n.b, frame));
    case NK::kCompare: {
      Value left = eval(*n.a, frame);
      for (size_t k = 0; k < n.ops.size(); ++k) {
        Value right = eval(*n.kids[k], frame);
        const std::string& op = n.ops[k];
        bool r;
        if (op == "==") {
          r = values_equal(left, right);
        } else if (op == "!=") {
          r = !values_equal(left, right);
        } else if (op == "in") {
          r = contains(*this, left, right, n.line);
        } else if (op == "notin") {
          r = !contains(*this, left, right, n.line);
        } else {
          int c;
          try {
            c = compare_values(left, right);
          } catch (const std::invalid_argument& e) {
            error(n.line, e.what());
          }
          r = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
        }
        if (!r) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case NK::kAnd: {
      Value l = eval(*n.a, frame);
      return l.truthy() ? eval(*n.b, frame) : l;
    }
    case NK::kOr: {
      Value l = eval(*n.a, frame);
      return l.truthy() ? l : eval(*n.b, frame);
    }
    case NK::kCond:
      if (eval(*n.b, frame).truthy()) return eval(*n.a, frame);
      return n.c ? eval(*n.c, frame)
                 : Value::undefined("conditional expression had no else branch");
    default:
      error(n.line, "internal: statement used as expression");
  }
}

}  // namespace shardlm::text::jinja
