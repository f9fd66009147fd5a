#!/usr/bin/env bash
# The main job, from a fresh machine: install dependencies, build, pack a Hugging Face checkpoint
# into per-rank packs, and generate with all ranks in one process.
#
#   bash tools/demo.sh                          # the committed demo model completes Python code
#   bash tools/demo.sh HF_DIR "Your prompt"     # your checkpoint (with tokenizer.json), text in/out
#   TP=4 bash tools/demo.sh HF_DIR "..."        # another tensor-parallel size (default 2)
#   bash tools/demo.sh --fixture                # a random HF fixture: ids in/out vs transformers
set -euo pipefail
cd "$(dirname "$0")/.."
tp=${TP:-2}
fixture=tests/fixtures/hf/qwen3_qknorm_headdim32_tied_bf16
if [ "${1:-}" = "--fixture" ]; then
  model=$fixture
  prompt=
else
  model=${1:-models/demo/target}
  prompt=${2:-}
  if [ -z "${1:-}" ]; then prompt=$'def fibonacci(n):\n'; fi
fi

bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target shardlm-pack shardlm-run

pack_dir=${PACK_DIR:-build/packs/$(basename "$(dirname "$model")")-$(basename "$model")-tp$tp}
echo "== shardlm-pack --model $model --out $pack_dir --tp $tp"
build/bin/shardlm-pack --model "$model" --out "$pack_dir" --tp "$tp" --n-ctx 2048
echo "== shardlm-pack --inspect $pack_dir --verify (summary)"
build/bin/shardlm-pack --inspect "$pack_dir" --verify | sed -n '1,7p'
echo "== shardlm-run"
sampling=()
if [ "$model" = "models/demo/target" ]; then
  echo "(models/demo/target: a 12.6M-parameter Qwen3 trained by tools/train/train_demo_models.py"
  echo " on the Python standard library; it completes Python code and knows nothing else)"
  sampling=(--temperature 0.7 --seed 1)  # greedy decoding of a model this small loops
fi
if [ -n "$prompt" ]; then
  printf '%s' "$prompt"
  build/bin/shardlm-run --pack "$pack_dir" --prompt "$prompt" --max-tokens 80 "${sampling[@]}"
else
  # The fixture has random weights and no tokenizer: ids in, ids out. The continuation equals
  # Hugging Face transformers' greedy output recorded in the fixture's reference.json.
  build/bin/shardlm-run --pack "$pack_dir" --prompt-ids 280,24,234,127,102,21,247,110,318,317,235,235 \
    --max-tokens 20 --ignore-eos --print-ids
  echo "(reference greedy ids: $(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["greedy_ids"])))' \
    "$model/reference.json" 2>/dev/null || echo 'see reference.json'))"
fi
