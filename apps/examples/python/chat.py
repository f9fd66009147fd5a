#!/usr/bin/env python3
"""A small chat loop over libshardlm from Python (standard library only; see shardlm.py).

    python3 chat.py --pack PACK_DIR [--lib path/to/libshardlm.so.1] [--max-tokens N] ...

Reads one message per line from stdin (a terminal or a pipe), streams each answer, and prints
the tokens/s and time to first token of each turn. An empty line or EOF ends the chat;
"/reset" starts a new conversation.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shardlm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", required=True, help="pack directory")
    ap.add_argument("--lib", help="path of libshardlm.so (default: $SHARDLM_LIBRARY or search)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temp", type=float, default=shardlm.DEFAULT)
    ap.add_argument("--seed", type=int, default=shardlm.SEED_RANDOM)
    ap.add_argument("--system", default=None)
    args = ap.parse_args()

    shardlm.library(args.lib)
    with shardlm.Model(args.pack, n_threads=args.threads) as model:
        info = model.info()
        print("shardlm %s: %s, tp %d, context %d" % (shardlm.version(), info["architecture"],
                                                     info["tp_size"], info["n_ctx"]))
        with shardlm.Session(model, system=args.system) as session:
            for line in sys.stdin:
                message = line.rstrip("\n")
                if not message:
                    break
                if message == "/reset":
                    session.reset()
                    print("[reset]")
                    continue
                print("user> " + message)
                print("assistant> ", end="", flush=True)
                try:
                    r = session.chat(message, on_text=lambda t: print(t, end="", flush=True),
                                     max_tokens=args.max_tokens, temperature=args.temp,
                                     seed=args.seed)
                except shardlm.ShardlmError as e:
                    print("\n[error %s: %s]" % (e.status_name, e.message))
                    continue
                gen_rate = r.n_decode_steps / r.decode_seconds if r.decode_seconds > 0 else 0.0
                print("\n[%d tokens (%s); prompt %d tokens, %d reused; TTFT %.3f s; %.1f tok/s]"
                      % (r.n_generated, r.finish_reason, r.n_prompt, r.n_reused, r.ttft_seconds,
                         gen_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
