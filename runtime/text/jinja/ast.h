// Syntax tree of a parsed chat template: one generic Node type whose `kind` says which fields
// are used (see the comments on NK). Built by parser.cpp, walked by interpreter.cpp.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/text/jinja/value.h"

namespace shardlm::text::jinja {

enum class NK {
  // ---- expressions
  kLiteral,  // literal
  kName,     // name
  kList,     // kids
  kTuple,    // kids
  kDict,     // kids = key0, value0, key1, value1, ...
  kGetAttr,  // a = object, name = attribute
  kGetItem,  // a = object, b = index
  kSlice,    // a = object, kids = {start, stop, step} (entries may be null)
  kCall,     // a = callee, kids = positional args, kwargs
  kFilter,   // a = operand (null inside {% filter %}), name, kids = args, kwargs
  kTest,     // a = operand, name, kids = args, negate
  kUnary,    // name = "not" | "-" | "+", a
  kBinary,   // name = operator (+ - * / // % ** ~ in notin), a, b
  kCompare,  // a = first operand, ops, kids = further operands
  kAnd,      // a, b
  kOr,       // a, b
  kCond,     // a = value if true, b = condition, c = value if false (may be null)
  // ---- statements
  kData,         // name = text
  kPrint,        // a = expression
  kIf,           // a = condition, body, else_body
  kFor,          // target, a = iterable, b = filter condition (may be null), body, else_body
  kSet,          // target, a = value
  kSetBlock,     // target, body, b = filter chain (may be null)
  kMacro,        // name, params, defaults (aligned with params, may be null), body
  kCallBlock,    // a = call expression, params (caller args), body
  kFilterBlock,  // b = filter chain (operand null), body
  kBreak,
  kContinue,
  kDo,  // a = expression
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  NK kind;
  int line = 0;
  std::string name;
  Value literal;
  NodePtr a, b, c, target;
  std::vector<NodePtr> kids;
  std::vector<std::pair<std::string, NodePtr>> kwargs;
  std::vector<std::string> ops;
  std::vector<std::string> params;
  std::vector<NodePtr> defaults;
  std::vector<NodePtr> body, else_body;
  bool negate = false;
  bool recursive = false;

  Node(NK k, int l) : kind(k), line(l) {}
};

}  // namespace shardlm::text::jinja
