#!/usr/bin/env bash
# serve_vs_engine.sh: what the HTTP server costs, measured as interleaved A/B pairs on one pack.
#   A: the engine alone, `shardlm-bench --concurrency N` (end-to-end output tokens/s: every
#      generated token / submission to the last token, prefill included);
#   B: `shardlm-serve` with N streaming clients of `shardlm-serve-bench` (output tokens / wall
#      time, prefill included), N requests at once, fresh prompts every pair (no prefix hits).
# The server is paused (SIGSTOP) while A runs, so both sides have the machine to themselves.
# Prints one line per pair and the median B/A ratio. Not a test: a benchmark (docs/server.md).
#
# usage: tools/serve_vs_engine.sh PACK [PAIRS] [PROMPT_TOKENS] [GEN] [PROMPT_WORDS]
#   PROMPT_TOKENS should match what PROMPT_WORDS words tokenize to with the pack's tokenizer
#   (the server's /metrics says: shardlm_prompt_tokens_total / requests).
# env: BUILD (default build), N (clients, default 16), THREADS (default 2), PORT (default 18095),
#      SERVE_FLAGS (more shardlm-serve flags, e.g. --stream-interval 4),
#      CLIENT_FLAGS (more shardlm-serve-bench flags, e.g. --client-threads)
set -euo pipefail
PACK=${1:?usage: tools/serve_vs_engine.sh PACK [PAIRS] [PROMPT_TOKENS] [GEN] [PROMPT_WORDS]}
PAIRS=${2:-7}
PL=${3:-88}
GEN=${4:-64}
PW=${5:-30}
BUILD=${BUILD:-build}
N=${N:-16}
THREADS=${THREADS:-2}
PORT=${PORT:-18095}

# shellcheck disable=SC2086
"$BUILD/bin/shardlm-serve" --pack "$PACK" --port "$PORT" --threads "$THREADS" --no-access-log \
  ${SERVE_FLAGS:-} 2>/dev/null &
SP=$!
trap 'kill -CONT $SP 2>/dev/null; kill $SP 2>/dev/null; wait $SP 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  curl -sf "localhost:$PORT/health" >/dev/null && break
  sleep 0.2
done
client() {  # seed -> JSON report
  "$BUILD/bin/shardlm-serve-bench" --port "$PORT" --endpoint completions --concurrency "$N" \
    --requests "$N" --max-tokens "$GEN" --ignore-eos --prompt-words "$PW" --seed "$1" --json ${CLIENT_FLAGS:-}
}
client 1000 >/dev/null  # warm-up: page-in, thread pools

for i in $(seq "$PAIRS"); do
  kill -STOP $SP
  a=$("$BUILD/bin/shardlm-bench" --pack "$PACK" --concurrency "$N" --prompt-len "$PL" \
    --gen "$GEN" --reps 1 --threads "$THREADS" --no-probe --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["end_to_end_output_tok_s"])')
  kill -CONT $SP
  b=$(client "$i" | python3 -c 'import json,sys; j=json.load(sys.stdin);
print(j["output_tokens_per_s"], j["itl_ms"]["p50"], j["itl_ms"]["p99"], j["requests_failed"])')
  echo "$a $b"
done | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin]
for a, b, p50, p99, failed in rows:
    print("engine %8.1f tok/s  server %8.1f tok/s  ratio %.3f  ITL p50 %.2f ms p99 %.2f ms  "
          "failed %s" % (float(a), float(b), float(b) / float(a), float(p50), float(p99), failed))
print("median server/engine ratio %.3f over %d pairs"
      % (statistics.median(float(b) / float(a) for a, b, *_ in rows), len(rows)))'
