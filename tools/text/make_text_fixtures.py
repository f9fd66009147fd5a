#!/usr/bin/env python3
"""Reference fixtures for runtime/text, made with Hugging Face transformers/tokenizers.

Writes (committed; the C++ tests read them, no Python needed at test time):
  tests/fixtures/text/tokenizer_cases.json  encode/decode of tricky strings per tokenizer
  tests/fixtures/text/chat_cases.json       apply_chat_template renderings per template
  tests/fixtures/text/jinja_cases.json      small templates rendered by transformers' jinja env
  tests/fixtures/text/variant_cases.json    tokenizers.Tokenizer on testdata tokenizer.json files
                                            with pipeline parts replaced (Metaspace, GPT-2
                                            ByteLevel regex, Split behaviors, Strip, NFKC, ...)

Tokenizers (from tests/data/tokenizer, see its SOURCES.md):
  qwen3      qwen3/tokenizer.json + tokenizer_config.json          (AutoTokenizer)
  qwen2.5    qwen2.5/vocab.json + merges.txt + tokenizer_config.json (AutoTokenizer)
  llama2     llama2/tokenizer.json + tokenizer_config.json          (AutoTokenizer)
  tinyllama  llama2/tokenizer.json with its added_tokens flags replaced by the
             added_tokens_decoder of tinyllama/tokenizer_config.json (normalized=false: the
             TinyLlama tokenizer, which the llama.cpp tinyllama vectors need) + that config
  mistral    mistral/tokenizer.json + tokenizer_config.json

Run from the repo root:  .venv-text/bin/python tools/text/make_text_fixtures.py
"""
import json
import os
import shutil
import sys
import tempfile

import tokenizers
import transformers
from transformers import AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTDATA = os.path.join(REPO, "tests", "data", "tokenizer")
OUT = os.path.join(REPO, "tests", "fixtures", "text")


def load_tokenizer(name, tmp):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    if name == "qwen3":
        files = {"tokenizer.json": "qwen3/tokenizer.json",
                 "tokenizer_config.json": "qwen3/tokenizer_config.json"}
    elif name == "qwen2.5":
        files = {"vocab.json": "qwen2.5/vocab.json", "merges.txt": "qwen2.5/merges.txt",
                 "tokenizer_config.json": "qwen2.5/tokenizer_config.json"}
    elif name == "llama2":
        files = {"tokenizer.json": "llama2/tokenizer.json",
                 "tokenizer_config.json": "llama2/tokenizer_config.json",
                 "special_tokens_map.json": "llama2/special_tokens_map.json"}
    elif name == "tinyllama":
        files = {"tokenizer.json": "llama2/tokenizer.json",
                 "tokenizer_config.json": "tinyllama/tokenizer_config.json",
                 "special_tokens_map.json": "tinyllama/special_tokens_map.json"}
    elif name == "mistral":
        files = {"tokenizer.json": "mistral/tokenizer.json",
                 "tokenizer_config.json": "mistral/tokenizer_config.json",
                 "special_tokens_map.json": "mistral/special_tokens_map.json"}
    else:
        raise ValueError(name)
    for dst, src in files.items():
        shutil.copy(os.path.join(TESTDATA, src), os.path.join(d, dst))
    if name == "tinyllama":
        with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        with open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8") as f:
            dec = json.load(f)["added_tokens_decoder"]
        for tok in tj["added_tokens"]:
            tok.update({k: v for k, v in dec[str(tok["id"])].items() if k != "content"})
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False)
    return AutoTokenizer.from_pretrained(d)


TEXTS = [
    "Hello world",
    " Hello world",
    "Hello  world   with    runs",
    "你好，世界！这是一个测试。",
    "中文English混合text123",
    "日本語のテキストとカタカナ、ひらがな",
    "한국어 텍스트 입니다",
    "Ελληνικά και русский текст",
    "مرحبا بالعالم",
    "emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "def f(x):\n    return x * 2  # comment\n\n\tif x:\n\t\tpass\n",
    "int main() { printf(\"%d\\n\", a[i] + b->c); return 0; }",
    "    \n\n\n    \t\t  \r\n  trailing   ",
    " " * 40 + "x" + "\n" * 12 + "y" + "\t" * 9,
    "a\u00a0b\u3000c\u2028d\u200be",
    "e\u0301 o\u0308 A\u030a \u1100\u1161\u11a8 \ufb01",
    "numbers 1234567890 3.14159 1,000,000 -42 ½",
    "I'm you're they've we'll she'd it's DON'T",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more <think>reasoning</think> answer",
    "<s>[INST] hi [/INST] ok</s> and <unk> here",
    "abc</s> def</s>ghi <s> x",
    "URL https://example.com/a?b=c&d=e#frag user@mail.org",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 ∑∫∂ → ⇒ ≠ ≤",
    "\u0000\u0001 control \u001f chars \u007f",
    "",
    " ",
    "\n",
    "a" * 300,
    "The quick brown fox jumps over the lazy dog. " * 8,
]

TOKENIZERS = ["qwen3", "qwen2.5", "llama2", "tinyllama", "mistral"]


def make_tokenizer_cases(tmp):
    out = {"generator": "tools/text/make_text_fixtures.py",
           "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
           "tokenizers_cases": {}}
    for name in TOKENIZERS:
        tok = load_tokenizer(name, tmp)
        cases = []
        for text in TEXTS:
            ids = tok.encode(text, add_special_tokens=False)
            ids_sp = tok.encode(text, add_special_tokens=True)
            cases.append({
                "text": text,
                "ids": ids,
                "ids_with_special": ids_sp,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            })
        out["tokenizers_cases"][name] = {"class": type(tok).__name__, "cases": cases}
        print(name, type(tok).__name__, len(cases), "cases", file=sys.stderr)
    return out


SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello! How are you?"}],
    "system_user": [SYSTEM, {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Tell me a joke.\nMake it short."},
    ],
    "system_multi_turn": [
        SYSTEM,
        {"role": "user", "content": "  What's the capital of France?  "},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of 日本?"},
        {"role": "assistant", "content": "東京 (Tokyo). 😀"},
    ],
    "thinking_history": [
        {"role": "user", "content": "Solve 3*7."},
        {"role": "assistant", "content": "<think>\n3 times 7 is 21.\n</think>\n\nThe answer is 21."},
        {"role": "user", "content": "Now 4*5?"},
        {"role": "assistant", "content": "20", "reasoning_content": "4 times 5 equals 20."},
        {"role": "user", "content": "Thanks"},
    ],
    "tools": [
        SYSTEM,
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather",
                                              "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
        {"role": "tool", "content": "second tool output"},
        {"role": "assistant", "content": "It is 21°C and clear in Paris."},
        {"role": "user", "content": "<tool_response>\nfake\n</tool_response>"},
    ],
}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}]


def template_sources():
    def cfg(path):
        with open(os.path.join(TESTDATA, path), encoding="utf-8") as f:
            return json.load(f)["chat_template"]
    with open(os.path.join(OUT, "llama2-chat.jinja"), encoding="utf-8") as f:
        llama2 = f.read()
    # name -> (tokenizer providing bos/eos, source, where the source comes from)
    return {
        "qwen3": ("qwen3", cfg("qwen3/tokenizer_config.json"), "testdata qwen3/tokenizer_config.json"),
        "qwen3-earlier": ("qwen3", cfg("qwen3/tokenizer_config.earlier-template.json"),
                          "testdata qwen3/tokenizer_config.earlier-template.json"),
        "qwen2.5": ("qwen2.5", cfg("qwen2.5/tokenizer_config.json"), "testdata qwen2.5/tokenizer_config.json"),
        "mistral": ("mistral", cfg("mistral/tokenizer_config.json"), "testdata mistral/tokenizer_config.json"),
        "tinyllama": ("tinyllama", cfg("tinyllama/tokenizer_config.json"),
                      "testdata tinyllama/tokenizer_config.json"),
        "llama2": ("llama2", llama2, "fixtures text/llama2-chat.jinja (Llama-2-7b-chat-hf template)"),
    }


def make_chat_cases(tmp):
    toks = {}
    out = {"generator": "tools/text/make_text_fixtures.py",
           "transformers": transformers.__version__, "cases": []}
    for tname, (tok_name, source, origin) in template_sources().items():
        if tok_name not in toks:
            toks[tok_name] = load_tokenizer(tok_name, os.path.join(tmp, "chat"))
        tok = toks[tok_name]
        kwarg_sets = [{}]
        if tname.startswith("qwen3"):
            kwarg_sets = [{}, {"enable_thinking": True}, {"enable_thinking": False}]
        for conv_name, messages in CONVERSATIONS.items():
            use_tools = conv_name == "tools"
            if use_tools and not tname.startswith("qwen"):
                continue
            for agp in (False, True):
                for kw in kwarg_sets:
                    case = {"template": tname, "template_origin": origin, "conversation": conv_name,
                            "add_generation_prompt": agp, "kwargs": kw,
                            "bos_token": tok.bos_token or "", "eos_token": tok.eos_token or ""}
                    try:
                        text = tok.apply_chat_template(
                            messages, tools=TOOLS if use_tools else None, tokenize=False,
                            add_generation_prompt=agp, chat_template=source, **kw)
                        case["expected"] = text
                    except Exception as e:  # template raise_exception etc.
                        case["error"] = str(e)
                    out["cases"].append(case)
    out["conversations"] = CONVERSATIONS
    out["tools"] = TOOLS
    print(len(out["cases"]), "chat cases", file=sys.stderr)
    return out


JINJA_VARS = {
    "x": "X", "xs": ["a", "b", "c"], "n": 7,
    "d": {"a": 1, "b": [1, "two"], "c": {"n": None}, "f": 2.5},
    "msgs": [{"role": "user", "content": "u1\nline2"}, {"role": "assistant", "content": "a1"},
             {"role": "user", "content": "u2"}],
}
JINJA_CASES = [
    "  {% if true %}\n  yes\n  {% endif %}\nend",
    "{%- for x in xs -%}\n{{ x }},\n{%- endfor %}",
    "{{ xs|join(', ') }} {{ xs|length }} {{ xs|first }} {{ xs|last }} {{ xs|reverse|list }}",
    "{{ [1, 2.5, 'a', none, true, {'k': [1]}, \"it's\"] }}",
    "{{ 1/2 }} {{ 7//2 }} {{ -7//2 }} {{ -7 % 3 }} {{ 2**10 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 3.0 }} {{ 1e-7 }} {{ 123456789.125 }}",
    "{{ 'abc'[::-1] }} {{ 'hello'[1:3] }} {{ xs[-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[::2] }} {{ xs[5] }}|",
    "{% set ns = namespace(n=0, s='') %}{% for i in range(5) %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}",
    "{% for c in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.cycle('o', 'e') }}|{% endfor %}",
    "{% for c in [] %}a{% else %}empty{% endfor %}",
    "{% for i in range(10) if i is odd %}{% if i > 6 %}{% break %}{% endif %}{% if i == 3 %}{% continue %}{% endif %}{{ i }}{{ loop.length }} {% endfor %}",
    "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }} {{ greet(name='C') }}",
    "{{ d|tojson }}\n{{ d|tojson(indent=2) }}\n{{ '\u00e9\"\\n\t<&>'|tojson }} {{ none|tojson }} {{ 1.0|tojson }} {{ xs|tojson }}",
    "{{ '  a b  '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'Hello'.upper() }}{{ 'Hello'.lower() }}|{{ 'hello world'.title() }}|{{ 'x'.startswith('x') }}{{ 'abc'.endswith(('c', 'd')) }}|{{ 'aXbX'.replace('X', '-') }}|{{ 'abc'.find('c') }}|{{ 'xxhixx'.strip('x') }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a-b-c'.rsplit('-', 1) }}",
    "{{ x is defined }}{{ nope is defined }}{{ none is none }}{{ 3 is odd }}{{ 4 is even }}{{ 'a' is string }}{{ 1 is number }}{{ d is mapping }}{{ xs is iterable }}{{ 6 is divisibleby 3 }}{{ x is not none }}{{ nope is undefined }}{{ true is true }}{{ 0 is false }}{{ 1 is integer }}{{ 1.5 is float }}",
    "{{ 'a' if x else 'b' }} {{ x or 'dflt' }} {{ nope or 'dflt' }} {{ x and 'yes' }} {{ nope|default('D') }} {{ ''|default('E', true) }} {{ 'a' if nope }}|",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {{ d.get('a') }} {{ d.get('zz', 5) }} {{ d.get('zz') }} {{ d['a'] }} {{ d.a }} {{ 'a' in d }} {{ 'q' not in d }} {{ d.keys()|list }} {{ d.c.n }}",
    "{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }} {{ msgs|rejectattr('role', 'eq', 'user')|list|length }} {{ [3, 1, 2]|sort }} {{ [1, 1, 2]|unique|list }} {{ ['b', 'a', 'C']|sort(reverse=true) }} {{ [1, 2, 3]|select('odd')|list }} {{ ['a', 'b']|map('upper')|list }}",
    "a {# comment #} b\n{# line comment #}\nc  {#- strip -#}  d",
    "{% set s %}inner {{ x }}{% endset %}[{{ s }}]",
    "{% filter upper %}hello {{ x }}{% endfilter %}",
    "{{ 'a' ~ 1 ~ none }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ 2 * 'x' }}",
    "{{ 1 < 2 < 3 }} {{ 1 < 2 > 3 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ true == 1 }} {{ none == none }} {{ [1, 2] == [1, 2] }} {{ d == d }} {{ 'a' != 'a' }}",
    "{{ '42'|int + 1 }} {{ 3.7|int }} {{ '2.5'|float }} {{ 2.567|round(2) }} {{ -3|abs }} {{ 'x'|int }} {{ 2.5|round }} {{ 7|float }}",
    "{{ '  x  '|trim }}|{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'one two  three'|wordcount }}|{{ 'hELLO'|capitalize }}|{{ 'Hi'|center(6) }}|",
    "x\n    {%- if true %} y{% endif %}\n  {% if true %}\nz\n  {% endif %}\n",
    "a\n  {%+ if true +%}\nb{% endif %}\n  {{ x }}\n{% if true -%}\n  c\n{%- endif %}",
    "{% raw %}{{ not rendered }}{% endraw %}|{%- raw -%}  {% x %}  {%- endraw -%}  |",
    "{{ d|dictsort }} {{ d|items|list }}",
    "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }};{% endfor %}",
    "{% set v = 1 %}{% for i in [1] %}{% set v = 2 %}{{ v }}{% endfor %}{{ v }}",
    "{% if true %}{% set w = 5 %}{% endif %}{{ w }}",
    "{{ 'tab\\there' }}|{{ \"quote's\" }}|{{ '\\u00e9\\x41' }}|{{ 'a' 'b' }}",
    "{{ '日本語'|length }} {{ '日本語'[1] }} {{ '日本語'[::-1] }} {{ 'ab'|list }}",
    "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }}",
    "{{ msgs[0].content.split('\\n')[0] }} {{ msgs[-1]['content'] }} {{ msgs|length - 1 }} {{ (msgs|length - 1) * 2 }}",
    "[{{ nope }}][{{ d.nope }}][{{ none }}][{{ true }}][{{ d.f }}]",
    "{% if n is not none and n is defined and n > 5 %}big{% elif n > 2 %}mid{% else %}small{% endif %}",
    "{% for m in msgs %}{{ loop.previtem.role if loop.previtem is defined else 'none' }}>{{ m.role }}>{{ loop.nextitem.role if loop.nextitem is defined else 'end' }} {% endfor %}",
    "{{ -n }} {{ +n }} {{ not n }} {{ n - 2 * 3 }} {{ (n - 2) * 3 }} {{ n % 4 }} {{ n / 2 }} {{ n // 2 }}",
    "{{ 'a=%s b=%s' % ('x', 1) }} {{ '{} and {}'.format(1, 'two') }} {{ ', '.join(xs) }}",
    "{% set a, b = [1, 2] %}{{ a }}{{ b }} {% for i, c in [[1, 'x'], [2, 'y']] %}{{ i }}{{ c }}{% endfor %}",
    "{{ xs|batch(2)|list }} {{ [1, 5, 3]|max }} {{ [1, 5, 3]|min }} {{ [1, 2, 3]|sum }} {{ d.b|last }}",
    "{% for i in [1, 2] %}[{{ v }}]{% set v = i %}{% endfor %}{{ v }}",
    "{% set v = 0 %}{% for i in [1, 2] %}[{{ v }}]{% set v = i %}{% endfor %}{{ v }}",
    "{% macro m() %}{{ g }}{% endmacro %}{% set g = 5 %}{{ m() }}",
    "{{ d.zz }}|{{ none.y }}|{{ [1, 2, 3]|map('string')|join(',') }}|{{ 'abc' is in 'xabcx' }}|{{ (1,) }} {{ () }} {{ (1, 'a') }}",
    "{{ '%d items' % 3 }} {{ 5|string + 'x' }} {{ 10 ** -1 }} {{ 7 / 7 }} {{ 2 ** 0.5 }}",
]


def make_jinja_cases():
    from transformers.utils.chat_template_utils import _compile_jinja_template
    out = {"generator": "tools/text/make_text_fixtures.py", "jinja2": __import__("jinja2").__version__,
           "transformers": transformers.__version__, "vars": JINJA_VARS, "cases": []}
    for src in JINJA_CASES:
        case = {"template": src}
        try:
            case["expected"] = _compile_jinja_template(src).render(**JINJA_VARS)
        except Exception as e:
            case["error"] = str(e)
        out["cases"].append(case)
    return out


ME = "\u2581"
VARIANTS = {
    # base file, {top-level field: replacement}
    "llama2-metaspace": ("llama2/tokenizer.json", {
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": ME, "prepend_scheme": "first",
                          "split": False},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "ByteFallback"},
            {"type": "Metaspace", "replacement": ME, "prepend_scheme": "first", "split": False},
            {"type": "Fuse"}]}}),
    "llama2-metaspace-split": ("llama2/tokenizer.json", {
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Strip", "strip_left": True, "strip_right": True}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": ME, "prepend_scheme": "always",
                          "split": True},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": ME}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 2, "stop": 0}]}}),
    "qwen3-gpt2-bytelevel": ("qwen3/tokenizer.json", {
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "<|im_end|>", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {
                               "<|im_start|>": {"id": "<|im_start|>", "ids": [151644],
                                                "tokens": ["<|im_start|>"]},
                               "<|im_end|>": {"id": "<|im_end|>", "ids": [151645],
                                              "tokens": ["<|im_end|>"]}}}}),
    "qwen3-split-behaviors": ("qwen3/tokenizer.json", {
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFD"}, {"type": "Replace", "pattern": {"Regex": "\\s{3,}"}, "content": "  "}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": False},
            {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Contiguous", "invert": False},
            {"type": "Split", "pattern": {"Regex": "[.,!?]"}, "behavior": "MergedWithPrevious", "invert": False},
            {"type": "Split", "pattern": {"Regex": "\\p{Han}+"}, "behavior": "Isolated", "invert": True},
            {"type": "Split", "pattern": {"String": "|"}, "behavior": "Removed", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}}),
}


def make_variant_cases():
    out = {"generator": "tools/text/make_text_fixtures.py", "tokenizers": tokenizers.__version__,
           "variants": {}}
    for name, (base, patch) in VARIANTS.items():
        with open(os.path.join(TESTDATA, base), encoding="utf-8") as f:
            tj = json.load(f)
        tj.update(patch)
        tok = tokenizers.Tokenizer.from_str(json.dumps(tj))
        cases = []
        for text in TEXTS + ["a|b||c 12345 x.y!z", "你好世界abc中文", "  lead and trail  "]:
            enc = tok.encode(text, add_special_tokens=False)
            cases.append({"text": text, "ids": enc.ids,
                          "ids_with_special": tok.encode(text, add_special_tokens=True).ids,
                          "decoded": tok.decode(enc.ids, skip_special_tokens=False),
                          "decoded_skip_special": tok.decode(enc.ids, skip_special_tokens=True)})
        out["variants"][name] = {"base": base, "patch": patch, "cases": cases}
    return out


def main():
    tmp = tempfile.mkdtemp()
    os.makedirs(os.path.join(tmp, "chat"))
    try:
        tc = make_tokenizer_cases(tmp)
        cc = make_chat_cases(tmp)
        jc = make_jinja_cases()
        vc = make_variant_cases()
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(OUT, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump(tc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "chat_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "variant_cases.json"), "w", encoding="utf-8") as f:
        json.dump(vc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "jinja_cases.json"), "w", encoding="utf-8") as f:
        json.dump(jc, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
