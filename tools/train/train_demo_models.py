#!/usr/bin/env python3
"""Train shardlm's demo models: a byte-level BPE tokenizer and two Qwen3-architecture causal LMs
(a ~13M-parameter target and a ~3M-parameter draft sharing the tokenizer) on the Python standard
library's source files, and write them as standard Hugging Face model directories.

What this is: a tool. It needs PyTorch, transformers and tokenizers from PyPI in a venv
(tools/train/requirements.txt); neither the build nor the tests need it: they read the committed
model directories (models/demo/). What this is not: a recipe for a good language model. The
models are small enough to train on two CPU cores in about an hour and a half; they complete
Python code plausibly, which is what the runtime's demo, speculative decoding and perplexity
checks need.

Reproducibility: fixed seeds, one thread count, the corpus listed file by file with sha256 in
corpus.tsv (the list depends on the Python version installed: Debian 12's /usr/lib/python3.11 was
used for the committed models). The held-out split is whole files, chosen by a hash of the
relative path. The run writes train_log.json (loss curve, held-out perplexity, timings).

Run (from the repository root):
    python3 -m venv .venv-train
    .venv-train/bin/pip install -r tools/train/requirements.txt
    .venv-train/bin/python tools/train/train_demo_models.py --out models/demo
Options: --stdlib DIR (default /usr/lib/python3.X of this interpreter's version when it exists,
else the interpreter's own stdlib), --threads N, --target-steps N, --draft-steps N,
--only tokenizer|target|draft.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers  # noqa: E402
from tokenizers import trainers  # noqa: E402
from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM  # noqa: E402

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB_SIZE = 8192
# Qwen2/Qwen3's pre-tokenizer split (the same regex their tokenizer.json carries).
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# The two models. head_dim 64, GQA; tied embeddings (the embedding is a large share at this size).
MODELS = {
    "target": dict(hidden_size=384, intermediate_size=1024, num_hidden_layers=6,
                   num_attention_heads=6, num_key_value_heads=2),
    "draft": dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2),
}
SEQ_LEN = 256
HELD_OUT_EVERY = 25  # about 4% of the files, by path hash


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def default_stdlib() -> Path:
    v = f"{sys.version_info.major}.{sys.version_info.minor}"
    debian = Path(f"/usr/lib/python{v}")
    if (debian / "os.py").exists():
        return debian
    import sysconfig

    return Path(sysconfig.get_paths()["stdlib"])


def list_corpus(stdlib: Path) -> list[Path]:
    skip = {"site-packages", "dist-packages", "__pycache__"}
    files = [p for p in stdlib.rglob("*.py") if not (set(p.relative_to(stdlib).parts) & skip)]
    return sorted(files, key=lambda p: p.relative_to(stdlib).as_posix())


def held_out(rel: str) -> bool:
    return int(hashlib.sha256(rel.encode()).hexdigest(), 16) % HELD_OUT_EVERY == 0


def read_corpus(stdlib: Path, out: Path) -> tuple[list[str], list[str]]:
    train, test, rows = [], [], []
    for p in list_corpus(stdlib):
        data = p.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a few test files are deliberately not UTF-8
        rel = p.relative_to(stdlib).as_posix()
        split = "test" if held_out(rel) else "train"
        (test if split == "test" else train).append(text)
        rows.append(f"{rel}\t{split}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}")
    (out / "corpus.tsv").write_text(
        f"# Python standard library source files from {stdlib} (PSF license)\n"
        "# path\tsplit\tbytes\tsha256\n" + "\n".join(rows) + "\n")
    return train, test


def train_tokenizer(train_texts: list[str], out: Path) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(train_texts, trainer=trainer)
    tok.save(str(out / "tokenizer.json"))
    return tok


def write_tokenizer_config(model_dir: Path) -> None:
    added = {
        str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                 "single_word": False, "special": True}
        for i, t in enumerate(SPECIAL_TOKENS)
    }
    cfg = {
        "added_tokens_decoder": added,
        "bos_token": None,
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 2048,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
    }
    (model_dir / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def encode_docs(tok: Tokenizer, texts: list[str]) -> torch.Tensor:
    eot = tok.token_to_id("<|endoftext|>")
    ids: list[int] = []
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


def make_model(name: str, seed: int) -> Qwen3ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen3Config(
        vocab_size=VOCAB_SIZE, head_dim=64, max_position_embeddings=2048, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=0, pad_token_id=0,
        attention_dropout=0.0, initializer_range=0.02, use_cache=True, **MODELS[name])
    model = Qwen3ForCausalLM(cfg)
    model.config._attn_implementation = "sdpa"
    return model


@torch.no_grad()
def heldout_loss(model, ids: torch.Tensor, batch: int = 8) -> float:
    """Mean next-token NLL over non-overlapping SEQ_LEN windows of the held-out stream."""
    model.eval()
    n = (len(ids) - 1) // SEQ_LEN
    total, count = 0.0, 0
    for b in range(0, n, batch):
        rows = range(b, min(n, b + batch))
        x = torch.stack([ids[r * SEQ_LEN:(r + 1) * SEQ_LEN] for r in rows])
        y = torch.stack([ids[r * SEQ_LEN + 1:(r + 1) * SEQ_LEN + 1] for r in rows])
        logits = model(input_ids=x, use_cache=False).logits.float()
        total += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def train_model(name: str, train_ids: torch.Tensor, test_ids: torch.Tensor, steps: int,
                batch: int, lr: float, seed: int) -> tuple[Qwen3ForCausalLM, dict]:
    model = make_model(name, seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{name}: {n_params / 1e6:.2f}M parameters, {steps} steps of {batch}x{SEQ_LEN} tokens")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    warmup = max(1, steps // 50)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    g = torch.Generator().manual_seed(seed)
    curve = []
    t0 = time.time()
    model.train()
    running = None
    for step in range(steps):
        starts = torch.randint(0, len(train_ids) - SEQ_LEN - 1, (batch,), generator=g)
        x = torch.stack([train_ids[s:s + SEQ_LEN] for s in starts])
        y = torch.stack([train_ids[s + 1:s + SEQ_LEN + 1] for s in starts])
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=x, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                 y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            entry = {"step": step, "train_loss": round(running, 4), "lr": lr_at(step),
                     "seconds": round(time.time() - t0, 1)}
            if step % 500 == 0 or step == steps - 1:
                entry["heldout_loss"] = round(heldout_loss(model, test_ids[:SEQ_LEN * 64 + 1]), 4)
            curve.append(entry)
            log(f"{name} step {step}: {entry}")
    seconds = time.time() - t0
    full = heldout_loss(model, test_ids)
    info = {"parameters": n_params, "steps": steps, "batch": batch, "seq_len": SEQ_LEN,
            "tokens_seen": steps * batch * SEQ_LEN, "peak_lr": lr, "train_seconds": round(seconds),
            "heldout_loss": round(full, 4), "heldout_perplexity": round(math.exp(full), 3),
            "curve": curve}
    log(f"{name}: held-out loss {full:.4f}, perplexity {math.exp(full):.3f}, {seconds:.0f} s")
    return model, info


def save_model(model: Qwen3ForCausalLM, model_dir: Path, tok_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    model = model.to(torch.bfloat16)
    model.save_pretrained(model_dir, safe_serialization=True)
    GenerationConfig(bos_token_id=None, eos_token_id=[0, 2], pad_token_id=0, do_sample=True,
                     temperature=0.7, top_p=0.95, max_new_tokens=128).save_pretrained(model_dir)
    (model_dir / "tokenizer.json").write_bytes((tok_dir / "tokenizer.json").read_bytes())
    write_tokenizer_config(model_dir)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("models/demo"))
    ap.add_argument("--stdlib", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target-steps", type=int, default=3000)
    ap.add_argument("--draft-steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--only", choices=["tokenizer", "target", "draft"], default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(0)
    stdlib = args.stdlib or default_stdlib()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, corpus {stdlib}")

    train_texts, test_texts = read_corpus(stdlib, out)
    log(f"corpus: {len(train_texts)} train files, {len(test_texts)} held-out files")
    tok_path = out / "tokenizer.json"
    if args.only in (None, "tokenizer") or not tok_path.exists():
        tok = train_tokenizer(train_texts, out)
    else:
        tok = Tokenizer.from_file(str(tok_path))
    train_ids = encode_docs(tok, train_texts)
    test_ids = encode_docs(tok, test_texts)
    log(f"tokens: {len(train_ids)} train, {len(test_ids)} held-out "
        f"({sum(map(len, train_texts)) / len(train_ids):.2f} chars per token)")
    log_path = out / "train_log.json"
    report = json.loads(log_path.read_text()) if log_path.exists() else {}
    report.update({"torch": torch.__version__, "transformers": transformers.__version__,
                   "threads": args.threads, "corpus": str(stdlib),
                   "train_tokens": len(train_ids), "heldout_tokens": len(test_ids),
                   "vocab_size": VOCAB_SIZE})
    for name, steps, lr, seed in (("target", args.target_steps, 2e-3, 1),
                                  ("draft", args.draft_steps, 3e-3, 2)):
        if args.only not in (None, name):
            continue
        model, info = train_model(name, train_ids, test_ids, steps, args.batch, lr, seed)
        save_model(model, out / name, out)
        report[name] = info
        log_path.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
