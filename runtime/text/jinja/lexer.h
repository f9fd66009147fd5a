// Jinja lexer for chat templates: splits template source into data and tag tokens with the
// whitespace rules HF uses (trim_blocks=True, lstrip_blocks=True, "-"/"+" modifiers,
// keep_trailing_newline=False, newlines normalized to "\n"), and tokenizes the inside of tags
// (names, numbers, strings with Python escapes, operators). {% raw %} blocks become data.
// Errors: Error(kFormat, "chat template line N: ...").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm::text::jinja {

enum class Tok {
  kData,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEof
};

struct Token {
  Tok type;
  std::string text;  // data, name, operator, or decoded string literal
  int line = 1;
  int64_t ival = 0;
  double fval = 0.0;
};

std::vector<Token> lex(const std::string& source);

// "chat template line N: msg" as Error(kFormat).
[[noreturn]] void syntax_error(int line, const std::string& msg);

}  // namespace shardlm::text::jinja
