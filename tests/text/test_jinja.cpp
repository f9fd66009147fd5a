// The chat-template renderer on its own: small templates against jinja2 as transformers
// configures it (tests/fixtures/text/jinja_cases.json), malformed templates (a clear error naming
// the line, never a crash) and the sandbox limits.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/core/status.h"
#include "runtime/text/chat_template.h"
#include "tests/text/text_test_util.h"

namespace shardlm::text::testing {
namespace {

using OJson = nlohmann::ordered_json;

TEST(Jinja, MatchesJinja2Semantics) {
  const OJson j = OJson::parse(slurp(fixture("jinja_cases.json")));
  const OJson& vars = j.at("vars");
  size_t pass = 0, total = 0;
  for (const auto& c : j.at("cases")) {
    ++total;
    const std::string src = c.at("template");
    ASSERT_TRUE(c.contains("expected")) << src;
    // Render with the fixture variables as extra kwargs and no messages.
    const std::string got = ChatTemplate(src).render(OJson::array(), false, vars);
    EXPECT_EQ(got, c.at("expected").get<std::string>()) << "template: " << src;
    pass += got == c.at("expected").get<std::string>();
  }
  std::cout << "[jinja] " << pass << "/" << total << " templates match jinja2\n";
}

TEST(Jinja, NamespacesThatHoldThemselvesRenderAndAreFreed) {
  // A namespace holding itself (or two holding each other) is a reference cycle; jinja2 renders
  // these, and so must we. The interpreter empties every namespace a template assigned into
  // when the render ends (also after an error), so the cycle does not outlive it: the ASan
  // build's leak check over this test and the fuzz corpus (regress-namespace-cycle-leak) holds
  // that.
  const std::string self = "{% set ns = namespace(x=1) %}{% set ns.me = ns %}{{ ns.me.me.x }}";
  EXPECT_EQ(ChatTemplate(self).render(OJson::array(), false), "1");
  const std::string pair =
      "{% set a = namespace(v='a') %}{% set b = namespace(v='b') %}"
      "{% set a.o = b %}{% set b.o = a %}{{ a.o.o.v }}{{ b.o.v }}";
  EXPECT_EQ(ChatTemplate(pair).render(OJson::array(), false), "aa");
  try {
    ChatTemplate("{% set ns = namespace() %}{% set ns.me = ns %}{{ raise_exception('stop') }}")
        .render(OJson::array(), false);
    ADD_FAILURE() << "raise_exception did not raise";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stop"), std::string::npos) << e.what();
  }
}

TEST(Jinja, IntegerArithmeticOutOf64BitsIsAnError) {
  // Python's integers are unbounded; ours are int64, so an out-of-range result is a template
  // error naming the operator (before: signed overflow, undefined behaviour; found by
  // fuzz_chat_template, regress-int-pow-overflow).
  auto render = [](const std::string& src) {
    return ChatTemplate(src).render(OJson::array(), false);
  };
  EXPECT_EQ(render("{{ 2 ** 62 }}"), "4611686018427387904");
  EXPECT_EQ(render("{{ (-2) ** 63 }}"), "-9223372036854775808");
  EXPECT_EQ(render("{{ 7 ** 0 }}|{{ 1 ** 4000000000000 }}|{{ (-1) ** 3 }}"), "1|1|-1");
  EXPECT_EQ(render("{{ 17 // 5 }}|{{ -17 // 5 }}|{{ -17 % 5 }}"), "3|-4|3");
  for (const char* src :
       {"{{ 2 ** 63 }}", "{{ 28529052639495 ** 72121 }}", "{{ 4611686018427387904 * 2 }}",
        "{{ 4611686018427387904 + 4611686018427387904 }}",
        "{{ -4611686018427387904 - 4611686018427387905 }}"}) {
    try {
      render(src);
      ADD_FAILURE() << "no error for " << src;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("does not fit in 64 bits"), std::string::npos)
          << src << " -> " << e.what();
    }
  }
}

// Expects Error(code) whose message contains every string in `needles`.
void expect_error(const std::string& src, StatusCode code, std::vector<std::string> needles,
                  const OJson& vars = OJson::object()) {
  try {
    ChatTemplate t(src);
    t.render(OJson::array({{{"role", "user"}, {"content", "hi"}}}), true, vars);
    ADD_FAILURE() << "no error for: " << src.substr(0, 200);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << src.substr(0, 200) << " -> " << e.what();
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << src.substr(0, 200) << " -> '" << e.what() << "' lacks '" << n << "'";
  }
}

TEST(Jinja, DigitRunsTooLongForAnIndexAreNoCrash) {
  // An all-digit attribute path part is an item index; one past int64 cannot index anything, so
  // the lookup is undefined as in jinja2 (before: std::out_of_range escaped the renderer; found
  // by fuzz_chat_template, regress-attr-index-overflow). str.format's "{N}" fields likewise.
  const OJson msgs = OJson::array({{{"role", "user"}, {"content", "hi"}}});
  auto render = [&](const std::string& src) { return ChatTemplate(src).render(msgs, false); };
  EXPECT_EQ(render("{{ (messages | selectattr('77777777777777777777777') | list) | length }}"),
            "0");
  EXPECT_EQ(render("{{ [[[5, 6]]] | map(attribute='0.1') | list }}"), "[6]");
  EXPECT_EQ(render("{{ '{1}{0}'.format('a', 'b') }}"), "ba");
  for (const char* src :
       {"{{ '{99999999999999999999999}'.format(1) }}", "{{ '{1a}'.format(1) }}"}) {
    expect_error(src, StatusCode::kInvalidArg, {"is not an argument index"});
  }
}

TEST(Jinja, MalformedTemplatesNameTheLine) {
  expect_error("line1\n{% if x %}\nunclosed", StatusCode::kFormat, {"line 3", "endif"});
  expect_error("a\nb\n{% foo %}", StatusCode::kFormat, {"line 3", "unknown tag 'foo'"});
  expect_error("{{ 'unterminated }}", StatusCode::kFormat, {"line 1", "unterminated string"});
  expect_error("\n\n{{ foo( }}", StatusCode::kFormat, {"line 3"});
  expect_error("{{ x ) }}", StatusCode::kFormat, {"line 1"});
  expect_error("{% for x in %}{% endfor %}", StatusCode::kFormat, {"line 1"});
  expect_error("{% for x xs %}{% endfor %}", StatusCode::kFormat, {"expected 'in'"});
  expect_error("{% endif %}", StatusCode::kFormat, {"line 1"});
  expect_error("{# never closed", StatusCode::kFormat, {"comment"});
  expect_error("{{ x", StatusCode::kFormat, {"line 1"});
  expect_error("{% if x %}{% else %}{% else %}{% endif %}", StatusCode::kFormat, {"line 1"});
  expect_error("x\n{% include 'other.jinja' %}", StatusCode::kFormat, {"line 2", "not allowed"});
  expect_error("{% extends 'base' %}", StatusCode::kFormat, {"not allowed"});
  expect_error("{{ 1 +* 2 }}", StatusCode::kFormat, {"line 1"});
  expect_error("{{ a.1.2.3 @ }}", StatusCode::kFormat, {"unexpected character '@'"});
  expect_error("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}",
               StatusCode::kFormat, {"nested too deeply"});
  std::string deep;
  for (int k = 0; k < 1000; ++k) deep += "{% if true %}";
  expect_error(deep, StatusCode::kFormat, {"nested too deeply"});
}

TEST(Jinja, RenderErrorsNameTheLine) {
  expect_error("ok\n{{ raise_exception('Roles must alternate') }}", StatusCode::kInvalidArg,
               {"line 2", "Roles must alternate"});
  expect_error("\n{{ nope.attr }}", StatusCode::kInvalidArg, {"line 2", "'nope' is undefined"});
  expect_error("{{ nope() }}", StatusCode::kInvalidArg, {"line 1", "undefined"});
  expect_error("{{ 'a' + 1 }}", StatusCode::kInvalidArg, {"unsupported operand"});
  expect_error("{{ 1 / 0 }}", StatusCode::kInvalidArg, {"division by zero"});
  expect_error("{{ x|nosuchfilter }}", StatusCode::kInvalidArg, {"no filter named"});
  expect_error("{{ x is nosuchtest }}", StatusCode::kInvalidArg, {"no test named"});
  expect_error("{{ messages.append(1) }}", StatusCode::kInvalidArg, {"unsafe"});
  expect_error("{% set x.y = 1 %}", StatusCode::kInvalidArg, {"namespace"});
  expect_error("{{ 1 < 'a' }}", StatusCode::kInvalidArg, {"not supported"});
}

TEST(Jinja, SandboxLimits) {
  expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
               StatusCode::kInvalidArg, {"iteration limit"});
  expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", StatusCode::kInvalidArg,
               {"call depth limit"});
  expect_error("{{ 'x' * 100000000 }}", StatusCode::kInvalidArg, {"too large"});
  expect_error("{{ range(100000000)|length }}", StatusCode::kInvalidArg, {"range() too large"});
  ChatTemplateLimits small;
  small.max_output_bytes = 1000;
  ChatTemplate t("{% for i in range(10000) %}abcdef{% endfor %}", small);
  try {
    t.render(OJson::array(), false);
    ADD_FAILURE() << "no output limit error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArg);
    EXPECT_NE(std::string(e.what()).find("output size limit"), std::string::npos);
  }
}

TEST(Jinja, RandomGarbageNeverCrashes) {
  // Mutations of a real template: every result either renders or throws shardlm::Error.
  const std::string base = select_chat_template(slurp(testdata("qwen3/tokenizer_config.json")));
  uint64_t seed = 12345;
  auto rnd = [&]() {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(seed >> 33);
  };
  const char* pieces[] = {"{%", "%}", "{{",    "}}",     "(",    ")",     "[",
                          "]",  "'",  "\"",    "|",      " is ", " not ", "-",
                          ".",  ",",  "endif", "endfor", "{#",   "#}",    "\n"};
  const OJson messages = OJson::array({{{"role", "user"}, {"content", "hi"}},
                                       {{"role", "assistant"}, {"content", "<think>x</think>y"}}});
  size_t ok = 0, errors = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string s = base;
    for (int m = 0; m < 3; ++m) {
      const size_t pos = rnd() % s.size();
      if (rnd() % 2) {
        s.erase(pos, 1 + rnd() % 4);
      } else {
        s.insert(pos, pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))]);
      }
    }
    try {
      ChatTemplate(s).render(messages, true);
      ++ok;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_EQ(ok + errors, 300u);
}

}  // namespace
}  // namespace shardlm::text::testing
