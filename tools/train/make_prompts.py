#!/usr/bin/env python3
"""Write the demo models' benchmark prompts from the held-out split of their corpus, so the
speculative-decoding and perplexity figures are measured on code the models never trained on.

  code_completion.jsonl  a held-out function's signature and docstring: complete the body
  repeat_code.jsonl      a held-out function, then its signature again under a new name: the
                         natural continuation repeats the body (what n-gram lookup is for)
  heldout_sample.py      one whole held-out file (perplexity checks)

What this is: a tool (standard library only). Reads corpus.tsv beside the models (the split) and
the files from the stdlib directory named there; checks their sha256 against the listing.
Usage: python3 tools/train/make_prompts.py --models models/demo
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

SAMPLE_FILE = "graphlib.py"


def heldout_files(models: Path) -> tuple[Path, list[tuple[str, str]]]:
    lines = (models / "corpus.tsv").read_text().splitlines()
    stdlib = Path(lines[0].split(" from ")[1].split(" (")[0])
    out = []
    for row in lines:
        if row.startswith("#"):
            continue
        rel, split, _size, sha = row.split("\t")
        if split != "test":
            continue
        data = (stdlib / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            sys.exit(f"{stdlib / rel}: differs from the corpus listing (another Python version?)")
        out.append((rel, data.decode("utf-8")))
    return stdlib, out


def functions(text: str) -> list[tuple[str, str, str]]:
    """(signature line, docstring block, whole function) of functions with a docstring."""
    lines = text.splitlines(keepends=True)
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)def \w+\(.*\):\s*$", line)
        if not m or i + 1 >= len(lines):
            continue
        indent = len(m.group(1))
        doc = lines[i + 1]
        if not doc.strip().startswith('"""'):
            continue
        j = i + 1
        if doc.strip().count('"""') < 2 or doc.strip() == '"""':
            j += 1
            while j < len(lines) and '"""' not in lines[j]:
                j += 1
        docblock = "".join(lines[i + 1:j + 1])
        k = j + 1
        while k < len(lines) and (not lines[k].strip() or
                                  len(lines[k]) - len(lines[k].lstrip()) > indent):
            k += 1
        body = "".join(lines[i:k]).rstrip() + "\n"
        out.append((line, docblock, body))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, default=Path("models/demo"))
    args = ap.parse_args()
    _, files = heldout_files(args.models)
    out_dir = args.models / "prompts"
    out_dir.mkdir(parents=True, exist_ok=True)
    completion, repeat = [], []
    for rel, text in files:
        fns = functions(text)
        for sig, doc, _ in fns[:2]:
            if len(completion) < 12 and len(sig) + len(doc) < 600:
                completion.append({"source": rel, "prompt": sig + doc})
        for sig, _, body in fns:
            n = body.count("\n")
            if 8 <= n <= 25 and len(repeat) < 6:
                name = re.search(r"def (\w+)", sig).group(1)
                again = sig.replace(f"def {name}(", f"def {name}_copy(", 1)
                repeat.append({"source": rel, "prompt": body + "\n\n" + again})
                break
    for name, rows in (("code_completion.jsonl", completion), ("repeat_code.jsonl", repeat)):
        (out_dir / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{out_dir / name}: {len(rows)} prompts")
    sample = dict(files)[SAMPLE_FILE]
    (args.models / "heldout_sample.py").write_text(sample)
    print(f"{args.models / 'heldout_sample.py'}: {SAMPLE_FILE}, {len(sample)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
