// Tree-walking evaluator for parsed chat templates, sandboxed: no file system, no attribute
// access beyond the Python-like methods listed in builtins.cpp, immutable lists and dicts,
// and hard limits on output size, loop iterations, call depth and range() length.
// Errors: Error(kInvalidArg, "chat template line N: ...") for render-time failures,
// including raise_exception() from the template itself.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/text/jinja/ast.h"
#include "runtime/text/jinja/value.h"

namespace shardlm::text::jinja {

struct Limits {
  size_t max_output_bytes = 16u << 20;
  size_t max_loop_iterations = 1000000;  // total over the whole render
  int max_call_depth = 64;
  size_t max_range = 100000;
};

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  const Value* lookup(const std::string& name) const;
};

class Interpreter {
 public:
  Interpreter(const Limits& limits, std::shared_ptr<Frame> globals);

  std::string render(const std::vector<NodePtr>& body);

  // Used by builtins.
  [[noreturn]] void error(int line, const std::string& msg) const;
  Value call(const Value& callee, CallArgs& args, int line);
  Value apply_filter(const std::string& name, const Value& v, CallArgs& args, int line);
  bool apply_test(const std::string& name, const Value& v, CallArgs& args, int line);
  Value get_attr(const Value& obj, const std::string& name, int line);
  Value get_item(const Value& obj, const Value& key, int line);
  // Items of an iterable (list items, dict keys, string characters).
  List iterate(const Value& v, int line);
  const Limits& limits() const { return limits_; }
  void count_iterations(size_t n, int line);

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  Flow exec_body(const std::vector<NodePtr>& body, std::shared_ptr<Frame>& frame, std::string& out);
  Flow exec(const Node& n, std::shared_ptr<Frame>& frame, std::string& out);
  void exec_for(const Node& n, std::shared_ptr<Frame>& frame, std::string& out);
  void assign(const Node& target, const Value& v, std::shared_ptr<Frame>& frame);
  Value eval(const Node& n, std::shared_ptr<Frame>& frame);
  Value eval_binary(const Node& n, const Value& a, const Value& b);
  Value make_macro(const Node& n, std::shared_ptr<Frame> frame);
  void append(std::string& out, const std::string& s, int line);

  Limits limits_;
  std::shared_ptr<Frame> globals_;
  size_t iterations_ = 0;
  int depth_ = 0;
  // Namespaces a `set ns.attr = ...` wrote into: the only way a template can make a reference
  // cycle (`{% set ns.me = ns %}`, or two namespaces holding each other), which shared ownership
  // would leak. render() empties them when it ends, whatever the outcome; nothing rendered
  // outlives the render.
  std::vector<std::shared_ptr<Dict>> assigned_namespaces_;
  std::unordered_set<const Dict*> assigned_set_;
};

// Registers range, namespace, dict, raise_exception, strftime_now into a globals frame.
void add_builtin_globals(Frame& globals, Interpreter* interp);

// Python-like methods of str/list/dict values; returns undefined when there is no such method.
Value bound_method(Interpreter& in, const Value& obj, const std::string& name, int line);

Value builtin_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs& args,
                     int line, bool& found);
bool builtin_test(Interpreter& in, const std::string& name, const Value& v, CallArgs& args,
                  int line, bool& found);

// UTF-8 aware helpers shared by builtins.
size_t py_len(const Value& v);

}  // namespace shardlm::text::jinja
