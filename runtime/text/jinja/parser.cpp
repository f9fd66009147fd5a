// Recursive-descent parser (see parser.h), shaped after jinja2/parser.py: the same precedence
// (or < and < not < compare < +,- < ~ < *,/,//,% < ** < unary < filters/tests < postfix).
#include "runtime/text/jinja/parser.h"

#include "runtime/text/jinja/lexer.h"

namespace shardlm::text::jinja {

namespace {

constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  std::vector<NodePtr> parse_all() {
    std::vector<NodePtr> out;
    std::string end;
    parse_body(out, {}, end);
    return out;
  }

 private:
  // ---- token helpers
  const Token& peek(size_t ahead = 0) const {
    const size_t k = std::min(i_ + ahead, t_.size() - 1);
    return t_[k];
  }
  const Token& next() {
    const Token& tok = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return tok;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).type == Tok::kOp && peek(ahead).text == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).type == Tok::kName && peek(ahead).text == name;
  }
  std::string describe(const Token& tok) const {
    switch (tok.type) {
      case Tok::kEof:
        return "end of template";
      case Tok::kBlockEnd:
        return "'%}'";
      case Tok::kVarEnd:
        return "'}}'";
      case Tok::kData:
        return "template data";
      case Tok::kString:
        return "string";
      case Tok::kInt:
      case Tok::kFloat:
        return "number";
      default:
        return "'" + tok.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op))
      syntax_error(peek().line, std::string("expected '") + op + "', got " + describe(peek()));
    next();
  }
  std::string expect_name() {
    if (peek().type != Tok::kName)
      syntax_error(peek().line, "expected a name, got " + describe(peek()));
    return next().text;
  }
  void expect_block_end() {
    if (peek().type != Tok::kBlockEnd)
      syntax_error(peek().line, "expected end of statement block '%}', got " + describe(peek()));
    next();
  }
  struct Depth {
    Parser& p;
    explicit Depth(Parser& pp, int line) : p(pp) {
      if (++p.depth_ > kMaxNesting) syntax_error(line, "template nested too deeply");
    }
    ~Depth() { --p.depth_; }
  };

  // ---- statements
  // Parses until one of `ends` starts a block ({% endfor %} ...); sets `which` to it, leaving the
  // parser after that keyword (before the block end). With no ends, parses to EOF.
  void parse_body(std::vector<NodePtr>& out, const std::vector<std::string>& ends,
                  std::string& which) {
    Depth guard(*this, peek().line);
    while (true) {
      const Token& tok = peek();
      if (tok.type == Tok::kEof) {
        if (ends.empty()) return;
        std::string list;
        for (const auto& e : ends) list += (list.empty() ? "'" : " or '") + e + "'";
        syntax_error(tok.line, "unexpected end of template, expected " + list);
      }
      if (tok.type == Tok::kData) {
        auto n = std::make_unique<Node>(NK::kData, tok.line);
        n->name = tok.text;
        out.push_back(std::move(n));
        next();
        continue;
      }
      if (tok.type == Tok::kVarBegin) {
        next();
        auto n = std::make_unique<Node>(NK::kPrint, tok.line);
        n->a = parse_tuple_expr(true);
        if (peek().type != Tok::kVarEnd)
          syntax_error(peek().line,
                       "expected end of print statement '}}', got " + describe(peek()));
        next();
        out.push_back(std::move(n));
        continue;
      }
      if (tok.type == Tok::kBlockBegin) {
        next();
        if (peek().type != Tok::kName)
          syntax_error(peek().line, "expected a statement name after '{%'");
        const std::string kw = peek().text;
        for (const auto& e : ends) {
          if (kw == e) {
            next();
            which = kw;
            return;
          }
        }
        out.push_back(parse_statement());
        continue;
      }
      syntax_error(tok.line, "unexpected " + describe(tok));
    }
  }

  NodePtr parse_statement() {
    const Token& kw = next();
    const int line = kw.line;
    const std::string k = kw.text;
    if (k == "if") return parse_if(line);
    if (k == "for") return parse_for(line);
    if (k == "set") return parse_set(line);
    if (k == "macro") return parse_macro(line);
    if (k == "call") return parse_call_block(line);
    if (k == "filter") return parse_filter_block(line);
    if (k == "break" || k == "continue") {
      auto n = std::make_unique<Node>(k == "break" ? NK::kBreak : NK::kContinue, line);
      expect_block_end();
      return n;
    }
    if (k == "do") {
      auto n = std::make_unique<Node>(NK::kDo, line);
      n->a = parse_tuple_expr(true);
      expect_block_end();
      return n;
    }
    if (k == "generation") {  // transformers' AssistantTracker: render the body
      expect_block_end();
      auto n = std::make_unique<Node>(NK::kIf, line);
      auto lit = std::make_unique<Node>(NK::kLiteral, line);
      lit->literal = Value::boolean(true);
      n->a = std::move(lit);
      std::string which;
      parse_body(n->body, {"endgeneration"}, which);
      expect_block_end();
      return n;
    }
    if (k == "extends" || k == "include" || k == "import" || k == "from") {
      syntax_error(line, "'" + k + "' is not allowed in chat templates (no file system access)");
    }
    if (k == "block" || k == "with" || k == "autoescape") {
      // Rendered as their body (no inheritance, no scoping differences that matter here).
      while (peek().type != Tok::kBlockEnd && peek().type != Tok::kEof) next();
      expect_block_end();
      auto n = std::make_unique<Node>(NK::kIf, line);
      auto lit = std::make_unique<Node>(NK::kLiteral, line);
      lit->literal = Value::boolean(true);
      n->a = std::move(lit);
      std::string which;
      parse_body(n->body, {"end" + k}, which);
      while (peek().type != Tok::kBlockEnd && peek().type != Tok::kEof) next();
      expect_block_end();
      return n;
    }
    syntax_error(line, "unknown tag '" + k + "'");
  }

  NodePtr parse_if(int line) {
    auto n = std::make_unique<Node>(NK::kIf, line);
    n->a = parse_tuple_expr(true);
    expect_block_end();
    std::string which;
    parse_body(n->body, {"elif", "else", "endif"}, which);
    if (which == "elif") {
      n->else_body.push_back(parse_if(peek().line));
      return n;
    }
    if (which == "else") {
      expect_block_end();
      parse_body(n->else_body, {"endif"}, which);
    }
    expect_block_end();
    return n;
  }

  NodePtr parse_assign_target(int line) {
    // name | name.attr | name, name, ...
    std::vector<NodePtr> names;
    while (true) {
      auto nm = std::make_unique<Node>(NK::kName, peek().line);
      nm->name = expect_name();
      if (is_op(".")) {
        next();
        auto attr = std::make_unique<Node>(NK::kGetAttr, line);
        attr->a = std::move(nm);
        attr->name = expect_name();
        names.push_back(std::move(attr));
      } else {
        names.push_back(std::move(nm));
      }
      if (!is_op(",")) break;
      next();
    }
    if (names.size() == 1) return std::move(names[0]);
    auto tup = std::make_unique<Node>(NK::kTuple, line);
    tup->kids = std::move(names);
    return tup;
  }

  NodePtr parse_for(int line) {
    auto n = std::make_unique<Node>(NK::kFor, line);
    if (is_op("(")) {
      next();
      n->target = parse_assign_target(line);
      expect_op(")");
    } else {
      n->target = parse_assign_target(line);
    }
    if (!is_name("in"))
      syntax_error(peek().line, "expected 'in' in for loop, got " + describe(peek()));
    next();
    n->a = parse_tuple_expr(false);
    if (is_name("if")) {
      next();
      n->b = parse_expr(true);
    }
    if (is_name("recursive")) {
      next();
      n->recursive = true;
    }
    expect_block_end();
    std::string which;
    parse_body(n->body, {"else", "endfor"}, which);
    if (which == "else") {
      expect_block_end();
      parse_body(n->else_body, {"endfor"}, which);
    }
    expect_block_end();
    return n;
  }

  NodePtr parse_set(int line) {
    NodePtr target = parse_assign_target(line);
    if (is_op("=")) {
      next();
      auto n = std::make_unique<Node>(NK::kSet, line);
      n->target = std::move(target);
      n->a = parse_tuple_expr(true);
      expect_block_end();
      return n;
    }
    auto n = std::make_unique<Node>(NK::kSetBlock, line);
    n->target = std::move(target);
    if (is_op("|")) n->b = parse_filter_chain(nullptr);
    expect_block_end();
    std::string which;
    parse_body(n->body, {"endset"}, which);
    expect_block_end();
    return n;
  }

  void parse_signature(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (!n.params.empty()) expect_op(",");
      if (is_op(")")) break;
      n.params.push_back(expect_name());
      if (is_op("=")) {
        next();
        n.defaults.push_back(parse_expr(true));
      } else {
        n.defaults.push_back(nullptr);
      }
    }
    next();
  }

  NodePtr parse_macro(int line) {
    auto n = std::make_unique<Node>(NK::kMacro, line);
    n->name = expect_name();
    parse_signature(*n);
    expect_block_end();
    std::string which;
    parse_body(n->body, {"endmacro"}, which);
    if (peek().type == Tok::kName) next();  // {% endmacro name %}
    expect_block_end();
    return n;
  }

  NodePtr parse_call_block(int line) {
    auto n = std::make_unique<Node>(NK::kCallBlock, line);
    if (is_op("(")) parse_signature(*n);
    n->a = parse_expr(true);
    if (n->a->kind != NK::kCall) syntax_error(line, "expected a call after 'call'");
    expect_block_end();
    std::string which;
    parse_body(n->body, {"endcall"}, which);
    expect_block_end();
    return n;
  }

  NodePtr parse_filter_block(int line) {
    auto n = std::make_unique<Node>(NK::kFilterBlock, line);
    // {% filter upper | trim %}: a chain without operand
    NodePtr chain;
    do {
      if (chain) next();  // '|'
      auto f = std::make_unique<Node>(NK::kFilter, peek().line);
      f->name = parse_dotted_name();
      f->a = std::move(chain);
      if (is_op("(")) parse_call_args(*f);
      chain = std::move(f);
    } while (is_op("|"));
    n->b = std::move(chain);
    expect_block_end();
    std::string which;
    parse_body(n->body, {"endfilter"}, which);
    expect_block_end();
    return n;
  }

  // ---- expressions
  NodePtr parse_tuple_expr(bool with_cond) {
    const int line = peek().line;
    NodePtr first = parse_expr(with_cond);
    if (!is_op(",")) return first;
    auto tup = std::make_unique<Node>(NK::kTuple, line);
    tup->kids.push_back(std::move(first));
    while (is_op(",")) {
      next();
      if (peek().type == Tok::kBlockEnd || peek().type == Tok::kVarEnd || is_op(")")) break;
      tup->kids.push_back(parse_expr(with_cond));
    }
    return tup;
  }

  NodePtr parse_expr(bool with_cond) {
    Depth guard(*this, peek().line);
    NodePtr e = parse_or();
    if (!with_cond) return e;
    while (is_name("if")) {
      const int line = next().line;
      auto n = std::make_unique<Node>(NK::kCond, line);
      n->a = std::move(e);
      n->b = parse_or();
      if (is_name("else")) {
        next();
        n->c = parse_expr(true);
      }
      e = std::move(n);
    }
    return e;
  }

  NodePtr parse_or() {
    NodePtr l = parse_and();
    while (is_name("or")) {
      const int line = next().line;
      auto n = std::make_unique<Node>(NK::kOr, line);
      n->a = std::move(l);
      n->b = parse_and();
      l = std::move(n);
    }
    return l;
  }

  NodePtr parse_and() {
    NodePtr l = parse_not();
    while (is_name("and")) {
      const int line = next().line;
      auto n = std::make_unique<Node>(NK::kAnd, line);
      n->a = std::move(l);
      n->b = parse_not();
      l = std::move(n);
    }
    return l;
  }

  NodePtr parse_not() {
    if (is_name("not")) {
      Depth guard(*this, peek().line);
      const int line = next().line;
      auto n = std::make_unique<Node>(NK::kUnary, line);
      n->name = "not";
      n->a = parse_not();
      return n;
    }
    return parse_compare();
  }

  NodePtr parse_compare() {
    const int line = peek().line;
    NodePtr first = parse_math1();
    std::vector<std::string> ops;
    std::vector<NodePtr> rest;
    while (true) {
      std::string op;
      if (peek().type == Tok::kOp &&
          (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
           peek().text == "<=" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      ops.push_back(op);
      rest.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto n = std::make_unique<Node>(NK::kCompare, line);
    n->a = std::move(first);
    n->ops = std::move(ops);
    n->kids = std::move(rest);
    return n;
  }

  NodePtr binary(const std::string& op, NodePtr l, NodePtr r, int line) {
    auto n = std::make_unique<Node>(NK::kBinary, line);
    n->name = op;
    n->a = std::move(l);
    n->b = std::move(r);
    return n;
  }

  NodePtr parse_math1() {
    NodePtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& op = next();
      l = binary(op.text, std::move(l), parse_concat(), op.line);
    }
    return l;
  }

  NodePtr parse_concat() {
    NodePtr l = parse_math2();
    while (is_op("~")) {
      const Token& op = next();
      l = binary("~", std::move(l), parse_math2(), op.line);
    }
    return l;
  }

  NodePtr parse_math2() {
    NodePtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = next();
      l = binary(op.text, std::move(l), parse_pow(), op.line);
    }
    return l;
  }

  NodePtr parse_pow() {
    NodePtr l = parse_unary(true);
    while (is_op("**")) {
      const Token& op = next();
      l = binary("**", std::move(l), parse_unary(true), op.line);
    }
    return l;
  }

  NodePtr parse_unary(bool with_filter) {
    Depth guard(*this, peek().line);
    NodePtr node;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      node = std::make_unique<Node>(NK::kUnary, op.line);
      node->name = op.text;
      node->a = parse_unary(false);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  NodePtr parse_primary() {
    const Token& tok = peek();
    switch (tok.type) {
      case Tok::kName: {
        next();
        auto n = std::make_unique<Node>(NK::kLiteral, tok.line);
        if (tok.text == "true" || tok.text == "True") {
          n->literal = Value::boolean(true);
        } else if (tok.text == "false" || tok.text == "False") {
          n->literal = Value::boolean(false);
        } else if (tok.text == "none" || tok.text == "None") {
          n->literal = Value::none();
        } else {
          n->kind = NK::kName;
          n->name = tok.text;
        }
        return n;
      }
      case Tok::kString: {
        auto n = std::make_unique<Node>(NK::kLiteral, tok.line);
        std::string s;
        while (peek().type == Tok::kString) s += next().text;  // adjacent literals concatenate
        n->literal = Value::string(std::move(s));
        return n;
      }
      case Tok::kInt: {
        next();
        auto n = std::make_unique<Node>(NK::kLiteral, tok.line);
        n->literal = Value::integer(tok.ival);
        return n;
      }
      case Tok::kFloat: {
        next();
        auto n = std::make_unique<Node>(NK::kLiteral, tok.line);
        n->literal = Value::number(tok.fval);
        return n;
      }
      case Tok::kOp:
        if (tok.text == "(") {
          next();
          if (is_op(")")) {
            next();
            return std::make_unique<Node>(NK::kTuple, tok.line);
          }
          NodePtr inner = parse_tuple_expr(true);
          expect_op(")");
          return inner;
        }
        if (tok.text == "[") {
          next();
          auto n = std::make_unique<Node>(NK::kList, tok.line);
          while (!is_op("]")) {
            if (!n->kids.empty()) expect_op(",");
            if (is_op("]")) break;
            n->kids.push_back(parse_expr(true));
          }
          next();
          return n;
        }
        if (tok.text == "{") {
          next();
          auto n = std::make_unique<Node>(NK::kDict, tok.line);
          while (!is_op("}")) {
            if (!n->kids.empty()) expect_op(",");
            if (is_op("}")) break;
            n->kids.push_back(parse_expr(true));
            expect_op(":");
            n->kids.push_back(parse_expr(true));
          }
          next();
          return n;
        }
        break;
      default:
        break;
    }
    syntax_error(tok.line, "unexpected " + describe(tok));
  }

  void parse_call_args(Node& n) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (peek().type == Tok::kName && is_op("=", 1)) {
        std::string key = next().text;
        next();
        n.kwargs.emplace_back(std::move(key), parse_expr(true));
      } else {
        if (!n.kwargs.empty())
          syntax_error(peek().line, "positional argument after keyword argument");
        n.kids.push_back(parse_expr(true));
      }
    }
    next();
  }

  NodePtr parse_postfix(NodePtr node) {
    while (true) {
      if (is_op(".")) {
        const int line = next().line;
        if (peek().type == Tok::kInt) {
          auto n = std::make_unique<Node>(NK::kGetItem, line);
          n->a = std::move(node);
          auto idx = std::make_unique<Node>(NK::kLiteral, line);
          idx->literal = Value::integer(next().ival);
          n->b = std::move(idx);
          node = std::move(n);
          continue;
        }
        auto n = std::make_unique<Node>(NK::kGetAttr, line);
        n->a = std::move(node);
        n->name = expect_name();
        node = std::move(n);
      } else if (is_op("[")) {
        const int line = next().line;
        NodePtr parts[3];
        int count = 0;
        bool is_slice = false;
        while (!is_op("]")) {
          if (is_op(":")) {
            next();
            is_slice = true;
            if (++count > 2) syntax_error(line, "too many ':' in slice");
            continue;
          }
          if (parts[count]) syntax_error(line, "expected ']' or ':'");
          parts[count] = parse_expr(true);
        }
        next();
        if (is_slice) {
          auto n = std::make_unique<Node>(NK::kSlice, line);
          n->a = std::move(node);
          for (auto& p : parts) n->kids.push_back(std::move(p));
          node = std::move(n);
        } else {
          if (!parts[0]) syntax_error(line, "empty subscript");
          auto n = std::make_unique<Node>(NK::kGetItem, line);
          n->a = std::move(node);
          n->b = std::move(parts[0]);
          node = std::move(n);
        }
      } else if (is_op("(")) {
        auto n = std::make_unique<Node>(NK::kCall, peek().line);
        n->a = std::move(node);
        parse_call_args(*n);
        node = std::move(n);
      } else {
        return node;
      }
    }
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".")) {
      next();
      name += "." + expect_name();
    }
    return name;
  }

  NodePtr parse_filter_chain(NodePtr operand) {
    while (is_op("|")) {
      next();
      auto f = std::make_unique<Node>(NK::kFilter, peek().line);
      f->name = parse_dotted_name();
      f->a = std::move(operand);
      if (is_op("(")) parse_call_args(*f);
      operand = std::move(f);
    }
    return operand;
  }

  NodePtr parse_filter_expr(NodePtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter_chain(std::move(node));
      } else if (is_name("is")) {
        const int line = next().line;
        auto t = std::make_unique<Node>(NK::kTest, line);
        if (is_name("not")) {
          next();
          t->negate = true;
        }
        t->name = parse_dotted_name();
        t->a = std::move(node);
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((peek().type == Tok::kName && !is_name("else") && !is_name("or") &&
                    !is_name("and") && !is_name("if") && !is_name("in") && !is_name("not") &&
                    !is_name("is")) ||
                   peek().type == Tok::kString || peek().type == Tok::kInt ||
                   peek().type == Tok::kFloat || is_op("[") || is_op("{")) {
          NodePtr arg = parse_primary();
          t->kids.push_back(parse_postfix(std::move(arg)));
        }
        node = std::move(t);
      } else if (is_op("(")) {
        node = parse_postfix(std::move(node));
      } else {
        return node;
      }
    }
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

std::vector<NodePtr> parse_template(const std::string& source) {
  return Parser(lex(source)).parse_all();
}

}  // namespace shardlm::text::jinja
