#!/usr/bin/env python3
"""Perplexity of a text file under a Hugging Face model, computed exactly as
`shardlm-bench --perplexity FILE --ppl-ctx N` computes it, so the two figures can be compared:
the file is tokenized with the model directory's tokenizer.json (no special tokens added), cut into
non-overlapping windows of N tokens (the last may be shorter), each window scored on its own
(every token after the window's first predicted from the tokens before it), and perplexity =
exp(mean negative log-likelihood). The model runs in float32 (bf16 weights upcast), as shardlm's
default f32 activation mode does.

What this is: a tool (PyTorch, transformers, tokenizers from tools/train/requirements.txt).
Usage: .venv-train/bin/python tools/train/perplexity.py --model models/demo/target \\
           --file models/demo/heldout_sample.py --ctx 256 [--json]
           [--write-reference models/demo/perplexity_reference.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


@torch.no_grad()
def perplexity(model_dir: Path, text: str, ctx: int) -> dict:
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ids = tok.encode(text, add_special_tokens=False).ids
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    nll, scored, windows = 0.0, 0, 0
    for start in range(0, len(ids) - 1, ctx):
        w = ids[start:start + ctx]
        if len(w) < 2:
            break
        x = torch.tensor([w])
        logits = model(input_ids=x, use_cache=False).logits[0].double()
        logp = torch.log_softmax(logits[:-1], dim=-1)
        nll -= logp.gather(1, x[0, 1:].unsqueeze(1)).sum().item()
        scored += len(w) - 1
        windows += 1
    return {"perplexity": math.exp(nll / scored), "mean_nll": nll / scored, "tokens": len(ids),
            "scored": scored, "windows": windows, "ctx": ctx}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--file", type=Path, required=True)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write-reference", type=Path, default=None,
                    help="also write the figure as JSON here (models/demo/perplexity_reference.json;"
                         " its 'file' is stored relative to that file's folder)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    r = perplexity(args.model, args.file.read_text(encoding="utf-8"), args.ctx)
    if args.write_reference:
        ref = dict(r)
        ref["file"] = str(args.file.resolve().relative_to(args.write_reference.resolve().parent))
        ref["model"] = str(args.model)
        ref["torch"] = torch.__version__
        args.write_reference.write_text(json.dumps(ref, indent=1) + "\n")
    if args.json:
        print(json.dumps(r))
    else:
        print(f"perplexity {r['perplexity']:.4f}")
        print(f"  {args.file}: {r['tokens']} tokens, {r['scored']} scored in {r['windows']} "
              f"windows of {args.ctx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
