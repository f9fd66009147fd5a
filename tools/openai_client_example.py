#!/usr/bin/env python3
"""Talk to shardlm-serve (or any OpenAI-compatible server on this machine) with the official
`openai` Python client: list the models, one chat completion, one streaming chat completion
printed as it arrives, and one text completion.

What this is: an example of pointing the stock client at http://127.0.0.1:PORT/v1. What this is
not: a test (no test runs it) or a benchmark (that is shardlm-serve-bench).

  python3 -m venv .venv-openai
  .venv-openai/bin/pip install -r tools/openai_client_requirements.txt
  .venv-openai/bin/python tools/openai_client_example.py --port 8080 [--api-key KEY] [--model NAME]
"""
import argparse
import sys

from openai import OpenAI


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8080, help="server port on 127.0.0.1 (8080)")
    ap.add_argument("--api-key", default="none",
                    help="sent as 'Authorization: Bearer KEY' (a server without keys ignores it)")
    ap.add_argument("--model", help="model name (default: the first one the server lists)")
    ap.add_argument("--max-tokens", type=int, default=48, help="tokens per answer (48)")
    args = ap.parse_args()

    client = OpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key=args.api_key)

    models = [m.id for m in client.models.list()]
    print("models:", ", ".join(models) if models else "(none)")
    model = args.model or (models[0] if models else None)
    if model is None:
        print("the server lists no model; pass --model", file=sys.stderr)
        return 1

    print("\n== chat completion")
    chat = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say hello in one short sentence."}],
        max_tokens=args.max_tokens,
        temperature=0,
    )
    print(chat.choices[0].message.content)
    if chat.usage is not None:
        print(f"[{chat.usage.prompt_tokens} prompt + {chat.usage.completion_tokens} "
              f"completion tokens, finish_reason {chat.choices[0].finish_reason}]")

    print("\n== streaming chat completion")
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Count from one to ten."}],
        max_tokens=args.max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
        if chunk.usage is not None:
            usage = chunk.usage
    print()
    if usage is not None:
        print(f"[{usage.completion_tokens} completion tokens]")

    print("\n== completion")
    completion = client.completions.create(
        model=model, prompt="def fibonacci(n):", max_tokens=args.max_tokens, temperature=0)
    print(completion.choices[0].text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
