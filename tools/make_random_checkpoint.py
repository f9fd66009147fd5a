#!/usr/bin/env python3
"""Write a Hugging Face-style checkpoint directory with random weights and the real shapes of a
named model (for load/pack/benchmark work on full-size models without downloading them).

What this is: config.json + generation_config.json as the Hub checkpoint has them (the
transformers-4 layout: top-level rope_theta/rope_scaling, "torch_dtype"; or --config-format
hf-v5 for the layout transformers 5 writes), and model.safetensors (or N shards +
model.safetensors.index.json) with the HF tensor names. The safetensors files are written by
hand (8-byte little-endian header length, JSON header with dtype/shape/data_offsets and
__metadata__ {"format": "pt"}, header padded with spaces to 8 bytes), streaming tensor by tensor
in bounded chunks, so memory stays small even for 8B models.
What this is not: a model that says anything. Linear/embedding weights ~ N(0, 0.02), RMSNorm
weights ~ 1 + N(0, 0.02). Needs numpy and the standard library only (any Python with numpy,
e.g. .venv-fixtures/bin/python). Writes each file under a temporary name, then renames it.

Values depend only on (--seed, tensor name): the same seed gives the same tensors whatever
--shards or --num-layers (and the same float32 values before rounding to --dtype).

Examples:
  python3 tools/make_random_checkpoint.py --shape qwen3-0.6b --dtype bf16 --out /tmp/qwen3-0.6b-random
  python3 tools/make_random_checkpoint.py --shape llama3-8b --dtype bf16 --shards 4 --out /tmp/l3
  python3 tools/make_random_checkpoint.py --shape qwen3-0.6b --num-layers 2 --out /tmp/q2 \
      --tokenizer tests/data/tokenizer/qwen3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------------------------
# shapes: config.json exactly as the Hub checkpoint's (hf-v4 layout), generation_config.json too
# ----------------------------------------------------------------------------------------------
SHAPES = {
    "qwen3-0.6b": {
        "config": {
            "architectures": ["Qwen3ForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 151643,
            "eos_token_id": 151645,
            "head_dim": 128,
            "hidden_act": "silu",
            "hidden_size": 1024,
            "initializer_range": 0.02,
            "intermediate_size": 3072,
            "max_position_embeddings": 40960,
            "max_window_layers": 28,
            "model_type": "qwen3",
            "num_attention_heads": 16,
            "num_hidden_layers": 28,
            "num_key_value_heads": 8,
            "rms_norm_eps": 1e-06,
            "rope_scaling": None,
            "rope_theta": 1000000,
            "sliding_window": None,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.51.0",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": 151936,
        },
        "generation": {
            "bos_token_id": 151643,
            "do_sample": True,
            "eos_token_id": [151645, 151643],
            "pad_token_id": 151643,
            "temperature": 0.6,
            "top_k": 20,
            "top_p": 0.95,
            "transformers_version": "4.51.0",
        },
    },
    "qwen3-8b": {
        "config": {
            "architectures": ["Qwen3ForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 151643,
            "eos_token_id": 151645,
            "head_dim": 128,
            "hidden_act": "silu",
            "hidden_size": 4096,
            "initializer_range": 0.02,
            "intermediate_size": 12288,
            "max_position_embeddings": 40960,
            "max_window_layers": 36,
            "model_type": "qwen3",
            "num_attention_heads": 32,
            "num_hidden_layers": 36,
            "num_key_value_heads": 8,
            "rms_norm_eps": 1e-06,
            "rope_scaling": None,
            "rope_theta": 1000000,
            "sliding_window": None,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.51.0",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": 151936,
        },
        "generation": {
            "bos_token_id": 151643,
            "do_sample": True,
            "eos_token_id": [151645, 151643],
            "pad_token_id": 151643,
            "temperature": 0.6,
            "top_k": 20,
            "top_p": 0.95,
            "transformers_version": "4.51.0",
        },
    },
    "llama3-8b": {
        "config": {
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 128000,
            "eos_token_id": 128001,
            "hidden_act": "silu",
            "hidden_size": 4096,
            "initializer_range": 0.02,
            "intermediate_size": 14336,
            "max_position_embeddings": 8192,
            "model_type": "llama",
            "num_attention_heads": 32,
            "num_hidden_layers": 32,
            "num_key_value_heads": 8,
            "pretraining_tp": 1,
            "rms_norm_eps": 1e-05,
            "rope_scaling": None,
            "rope_theta": 500000.0,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.40.0.dev0",
            "use_cache": True,
            "vocab_size": 128256,
        },
        "generation": {
            "bos_token_id": 128000,
            "do_sample": True,
            "eos_token_id": 128001,
            "max_length": 4096,
            "temperature": 0.6,
            "top_p": 0.9,
            "transformers_version": "4.40.0.dev0",
        },
    },
    "llama3.2-1b": {
        "config": {
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 128000,
            "eos_token_id": 128001,
            "head_dim": 64,
            "hidden_act": "silu",
            "hidden_size": 2048,
            "initializer_range": 0.02,
            "intermediate_size": 8192,
            "max_position_embeddings": 131072,
            "mlp_bias": False,
            "model_type": "llama",
            "num_attention_heads": 32,
            "num_hidden_layers": 16,
            "num_key_value_heads": 8,
            "pretraining_tp": 1,
            "rms_norm_eps": 1e-05,
            "rope_scaling": {
                "factor": 32.0,
                "high_freq_factor": 4.0,
                "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3",
            },
            "rope_theta": 500000.0,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.45.0.dev0",
            "use_cache": True,
            "vocab_size": 128256,
        },
        "generation": {
            "bos_token_id": 128000,
            "do_sample": True,
            "eos_token_id": 128001,
            "temperature": 0.6,
            "top_p": 0.9,
            "transformers_version": "4.45.0.dev0",
        },
    },
    "qwen2-0.5b": {
        "config": {
            "architectures": ["Qwen2ForCausalLM"],
            "attention_dropout": 0.0,
            "bos_token_id": 151643,
            "eos_token_id": 151643,
            "hidden_act": "silu",
            "hidden_size": 896,
            "initializer_range": 0.02,
            "intermediate_size": 4864,
            "max_position_embeddings": 131072,
            "max_window_layers": 24,
            "model_type": "qwen2",
            "num_attention_heads": 14,
            "num_hidden_layers": 24,
            "num_key_value_heads": 2,
            "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0,
            "sliding_window": 131072,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.40.1",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": 151936,
        },
        "generation": {
            "bos_token_id": 151643,
            "eos_token_id": 151643,
            "max_new_tokens": 2048,
            "transformers_version": "4.40.1",
        },
    },
}

DTYPES = {  # --dtype -> (safetensors dtype, torch_dtype string, bytes per element)
    "bf16": ("BF16", "bfloat16", 2),
    "f16": ("F16", "float16", 2),
    "f32": ("F32", "float32", 4),
}

WEIGHT_STD = 0.02
NORM_STD = 0.02
CHUNK_ELEMS = 1 << 22  # 4M values per generated chunk: ~16 MiB of float32 scratch


# ----------------------------------------------------------------------------------------------
# tensor list
# ----------------------------------------------------------------------------------------------
def tensor_specs(cfg: dict) -> list[tuple[str, tuple[int, ...], str]]:
    """(HF name, shape, kind) in the order HF models declare them; kind: 'weight' | 'norm' | 'bias'."""
    mt = cfg["model_type"]
    h = cfg["hidden_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // nh
    ff, vocab = cfg["intermediate_size"], cfg["vocab_size"]
    qkv_bias = mt == "qwen2" or cfg.get("attention_bias", False)
    o_bias = mt != "qwen2" and cfg.get("attention_bias", False)
    specs = [("model.embed_tokens.weight", (vocab, h), "weight")]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", (h,), "norm"),
            (p + "self_attn.q_proj.weight", (nh * hd, h), "weight"),
            (p + "self_attn.k_proj.weight", (nkv * hd, h), "weight"),
            (p + "self_attn.v_proj.weight", (nkv * hd, h), "weight"),
        ]
        if qkv_bias:
            specs += [
                (p + "self_attn.q_proj.bias", (nh * hd,), "bias"),
                (p + "self_attn.k_proj.bias", (nkv * hd,), "bias"),
                (p + "self_attn.v_proj.bias", (nkv * hd,), "bias"),
            ]
        if mt == "qwen3":
            specs += [
                (p + "self_attn.q_norm.weight", (hd,), "norm"),
                (p + "self_attn.k_norm.weight", (hd,), "norm"),
            ]
        specs.append((p + "self_attn.o_proj.weight", (h, nh * hd), "weight"))
        if o_bias:
            specs.append((p + "self_attn.o_proj.bias", (h,), "bias"))
        specs += [
            (p + "post_attention_layernorm.weight", (h,), "norm"),
            (p + "mlp.gate_proj.weight", (ff, h), "weight"),
            (p + "mlp.up_proj.weight", (ff, h), "weight"),
            (p + "mlp.down_proj.weight", (h, ff), "weight"),
        ]
    specs.append(("model.norm.weight", (h,), "norm"))
    if not cfg.get("tie_word_embeddings", False):
        specs.append(("lm_head.weight", (vocab, h), "weight"))
    return specs


def numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ----------------------------------------------------------------------------------------------
# value generation and dtype conversion
# ----------------------------------------------------------------------------------------------
def tensor_rng(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(name.encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, round to nearest even (finite inputs)."""
    u = x.astype(np.float32, copy=False).view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return ((u + rounding) >> np.uint32(16)).astype("<u2")


def encode(x: np.ndarray, dtype: str) -> bytes:
    if dtype == "bf16":
        return f32_to_bf16_bits(x).tobytes()
    if dtype == "f16":
        return x.astype("<f2").tobytes()
    return x.astype("<f4", copy=False).tobytes()


def tensor_chunks(seed: int, name: str, shape, kind: str):
    """Yield float32 chunks (row-major order) of the tensor's values."""
    rng = tensor_rng(seed, name)
    left = numel(shape)
    while left:
        n = min(left, CHUNK_ELEMS)
        x = rng.standard_normal(n, dtype=np.float32)
        if kind == "norm":
            x = x * np.float32(NORM_STD) + np.float32(1.0)
        else:  # weight or bias
            x *= np.float32(WEIGHT_STD)
        yield x
        left -= n


# ----------------------------------------------------------------------------------------------
# safetensors writer
# ----------------------------------------------------------------------------------------------
def safetensors_header(specs, dtype: str) -> tuple[bytes, int]:
    st_dtype, _, esize = DTYPES[dtype]
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape, _ in specs:
        nbytes = numel(shape) * esize
        header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [off, off + nbytes]}
        off += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # data starts 8-byte aligned, as safetensors itself pads
    return raw, off


def write_safetensors(path: Path, specs, dtype: str, seed: int, progress) -> int:
    header, data_bytes = safetensors_header(specs, dtype)
    tmp = path.with_name(path.name + ".tmp-partial")
    written = 0
    with open(tmp, "wb") as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for name, shape, kind in specs:
            for chunk in tensor_chunks(seed, name, shape, kind):
                b = encode(chunk, dtype)
                f.write(b)
                written += len(b)
                progress(len(b))
        f.flush()
        os.fsync(f.fileno())
    assert written == data_bytes, (written, data_bytes)
    os.replace(tmp, path)
    return 8 + len(header) + data_bytes


def split_shards(specs, n: int, esize: int) -> list[list]:
    """n contiguous groups of roughly equal byte size (a tensor is never split)."""
    if n < 1:
        raise ValueError("--shards must be >= 1")
    if n > len(specs):
        raise ValueError(f"--shards {n} > number of tensors {len(specs)}")
    sizes = [numel(s) * esize for _, s, _ in specs]
    total = sum(sizes)
    groups: list[list] = [[]]
    acc = 0
    group_end = total / n  # byte position where the current group should end
    for i, (spec, sz) in enumerate(zip(specs, sizes)):
        if groups[-1] and len(groups) < n:
            past_share = acc + sz / 2 > group_end
            must_open = n - len(groups) >= len(specs) - i  # one tensor left per group to open
            if past_share or must_open:
                groups.append([])
                # share the rest evenly between this group and the ones still to open
                group_end = acc + (total - acc) / (n - len(groups) + 1)
        groups[-1].append(spec)
        acc += sz
    assert len(groups) == n and all(groups), [len(g) for g in groups]
    return groups


# ----------------------------------------------------------------------------------------------
# config layouts
# ----------------------------------------------------------------------------------------------
def make_config(shape: str, dtype: str, config_format: str, num_layers: int | None) -> dict:
    cfg = json.loads(json.dumps(SHAPES[shape]["config"]))
    cfg["torch_dtype"] = DTYPES[dtype][1]
    if num_layers is not None:
        cfg["num_hidden_layers"] = num_layers
        if "max_window_layers" in cfg:
            cfg["max_window_layers"] = num_layers
    if config_format == "hf-v5":
        # what transformers >= 5 save_pretrained writes for the same model
        theta = cfg.pop("rope_theta")
        scaling = cfg.pop("rope_scaling")
        rp = {"rope_theta": float(theta), "rope_type": "default"}
        if scaling:
            rp.update(scaling)
        cfg["rope_parameters"] = dict(sorted(rp.items()))
        cfg["dtype"] = cfg.pop("torch_dtype")
        if cfg["model_type"] == "llama":
            cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
            cfg.setdefault("mlp_bias", False)
            cfg.setdefault("pad_token_id", None)
        if cfg["model_type"] in ("qwen2", "qwen3"):
            cfg["layer_types"] = ["full_attention"] * cfg["num_hidden_layers"]
            cfg.setdefault("pad_token_id", None)
        cfg["transformers_version"] = "5.23.0"
        cfg = dict(sorted(cfg.items()))
    return cfg


# ----------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(
        description="Write a random-weight HF checkpoint with the real shapes of a named model.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="examples:" + __doc__.split("Examples:")[1])
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--shards", type=int, default=1,
                    help="1: model.safetensors; N>1: model-0000i-of-0000N.safetensors + index")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-layers", type=int, default=None,
                    help="override num_hidden_layers (smaller test checkpoints of the same width)")
    ap.add_argument("--config-format", default="hf-v4", choices=["hf-v4", "hf-v5"],
                    help="hf-v4: layout of the Hub checkpoint (default); hf-v5: transformers 5")
    ap.add_argument("--tokenizer", type=Path, default=None,
                    help="copy tokenizer files (tokenizer.json, tokenizer_config.json, ...) from DIR")
    ap.add_argument("--force", action="store_true", help="allow a non-empty --out")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    out: Path = args.out
    if out.exists() and any(out.iterdir()) and not args.force:
        print(f"error: {out} is not empty (use --force)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)

    cfg = make_config(args.shape, args.dtype, args.config_format, args.num_layers)
    gen = SHAPES[args.shape]["generation"]
    specs = tensor_specs(cfg)
    esize = DTYPES[args.dtype][2]
    total_data = sum(numel(s) * esize for _, s, _ in specs)
    n_params = sum(numel(s) for _, s, _ in specs)

    for stale in list(out.glob("model*.safetensors")) + list(out.glob("model.safetensors.index.json")):
        stale.unlink()
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    if args.tokenizer:
        for fn in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "tokenizer.model"):
            if (args.tokenizer / fn).exists():
                shutil.copyfile(args.tokenizer / fn, out / fn)

    t0 = time.time()
    done = [0, 0.0]

    def progress(nbytes: int):
        done[0] += nbytes
        now = time.time()
        if not args.quiet and (now - done[1] > 2 or done[0] == total_data):
            done[1] = now
            rate = done[0] / max(now - t0, 1e-9) / 1e6
            print(f"\r  {done[0] / 1e9:7.2f} / {total_data / 1e9:.2f} GB  ({rate:.0f} MB/s)",
                  end="", file=sys.stderr, flush=True)

    if not args.quiet:
        print(f"{args.shape}: {n_params / 1e9:.3f} B params, {len(specs)} tensors, "
              f"{args.dtype}, {args.shards} file(s) -> {out}", file=sys.stderr)
    if args.shards == 1:
        write_safetensors(out / "model.safetensors", specs, args.dtype, args.seed, progress)
    else:
        groups = split_shards(specs, args.shards, esize)
        weight_map = {}
        for i, g in enumerate(groups):
            fn = f"model-{i + 1:05d}-of-{args.shards:05d}.safetensors"
            write_safetensors(out / fn, g, args.dtype, args.seed, progress)
            for name, _, _ in g:
                weight_map[name] = fn
        index = {"metadata": {"total_size": total_data},
                 "weight_map": dict(sorted(weight_map.items()))}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    if not args.quiet:
        print(f"\n  done in {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
