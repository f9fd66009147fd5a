#!/usr/bin/env python3
"""Compare int8 weight scales per block of 32 inputs (what `shardlm-pack --weights int8` writes)
with one scale per output channel (per row), by model quality.

What this is: a measurement tool (docs/quantization.md, "Why per-block scales"). It reads a
Hugging Face checkpoint directory with one model.safetensors (bf16, f16 or f32), rounds every
linear layer's weight matrix (the *_proj.weight tensors) to int8 and back in the chosen
granularity, and writes an f32 checkpoint directory (the config and tokenizer files copied), so
that `shardlm-pack --dtype f32` and `shardlm-bench --perplexity --activations f32` measure what
the rounding of the weights alone costs. Both granularities use the packer's rounding: scale =
max|w| / 127 rounded to f16, q = round-half-even(w / scale) clamped to [-127, 127]. The embedding,
lm_head and norms stay as they are. It also prints each granularity's relative RMS error over
all linear weights.
What this is not: a quantizer for packs (the packer quantizes; quantized packs keep their blocks
of 32) or a speed measurement (per-channel scales would only drop the scale bytes: 1/16 of an
int8 row).

Needs numpy (a tool venv, never the tests).
  python3 tools/int8_scale_granularity.py --model models/demo/target --scales block --out /tmp/g-block
  python3 tools/int8_scale_granularity.py --model models/demo/target --scales channel --out /tmp/g-chan
  python3 tools/int8_scale_granularity.py --model models/demo/target --scales none --out /tmp/g-none
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

BLOCK = 32
DTYPES = {"BF16": 2, "F16": 2, "F32": 4}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of one safetensors file as f32 arrays."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in DTYPES:
            sys.exit(f"{path}: tensor {name} has dtype {dt}; this tool reads BF16, F16 and F32")
        lo, hi = info["data_offsets"]
        raw = data[base + lo : base + hi]
        if dt == "BF16":
            a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
        else:
            a = np.frombuffer(raw, dtype=np.float32).copy()
        out[name] = a.reshape(info["shape"])
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def fake_quant(w: np.ndarray, group: int) -> np.ndarray:
    """w [rows, n] rounded to int8 with one f16 scale per `group` inputs of a row, and back."""
    rows, n = w.shape
    g = w.reshape(rows, n // group, group)
    scale = (np.abs(g).max(axis=2, keepdims=True) / np.float32(127)).astype(np.float16).astype(np.float32)
    inv = np.where(scale > 0, 1 / np.where(scale > 0, scale, 1), 0).astype(np.float32)
    q = np.clip(np.rint(g * inv), -127, 127)  # np.rint rounds half to even, as the packer does
    return (q * scale).reshape(rows, n).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, type=Path, help="HF checkpoint dir (one model.safetensors)")
    ap.add_argument("--scales", required=True, choices=["block", "channel", "none"],
                    help="block: one scale per 32 inputs; channel: one per row; none: f32 copy")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    src = args.model / "model.safetensors"
    if not src.is_file():
        sys.exit(f"{src}: not found (this tool reads a single-file checkpoint)")
    tensors = read_safetensors(src)
    err2 = ref2 = 0.0
    n_lin = 0
    for name, w in tensors.items():
        if not (name.endswith("_proj.weight") and w.ndim == 2):
            continue
        if w.shape[1] % BLOCK:
            sys.exit(f"{src}: {name} has {w.shape[1]} inputs, not a multiple of {BLOCK}")
        if args.scales != "none":
            q = fake_quant(w, BLOCK if args.scales == "block" else w.shape[1])
            err2 += float(np.sum((q - w).astype(np.float64) ** 2))
            ref2 += float(np.sum(w.astype(np.float64) ** 2))
            tensors[name] = q
        n_lin += 1
    args.out.mkdir(parents=True, exist_ok=True)
    for f in args.model.iterdir():
        if f.is_file() and f.name != "model.safetensors" and not f.name.endswith(".safetensors"):
            shutil.copy2(f, args.out / f.name)
    write_safetensors(args.out / "model.safetensors", tensors)
    rel = (err2 / ref2) ** 0.5 if ref2 else 0.0
    print(f"{args.scales}: {n_lin} linear weights, relative RMS error {rel:.3e} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
