#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz (docs/reliability.md) with their limits, dictionaries
# and committed seed corpora; a crash, leak, timeout or out-of-memory input fails the run and is
# left in the output folder as crash-*/leak-*/timeout-*/oom-* (add it to tests/fuzz/corpus/<target>/
# as regress-<what> once fixed, so the unit suite replays it).
#   bash tools/fuzz.sh                      every target for 30 s (what CI runs)
#   bash tools/fuzz.sh --seconds 3600 --runs 10000000 fuzz_pack_reader   a long run of one target
# Options: --build-dir DIR (default build-asan: a SHARDLM_FUZZ build, made here when missing),
#   --seconds N per target, --runs N (stop earlier after N executions), --out DIR (work corpora,
#   findings and logs; default build-asan/fuzz-out), --jobs N (parallel workers per target),
#   --parallel N (targets run N at a time, each on one core; CI uses one per core).
# The last line per target: "<target>: <execs> execs, <exec/s>/s, cov <edges>, ft <features>,
# corpus <n>, <finding or none>".
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-asan seconds=30 runs=-1 out="" jobs=1 parallel=1 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
out=${out:-$build/fuzz-out}
# Per target: dictionary (or -), largest input in bytes, per-input time limit in seconds. A pack seed
# is a whole 47 KiB rank file; every other input is text-sized.
declare -A dict=([fuzz_safetensors]=json [fuzz_safetensors_index]=json [fuzz_hf_config]=json
  [fuzz_pack_reader]=- [fuzz_tokenizer]=json [fuzz_tokenize_text]=- [fuzz_chat_template]=jinja
  [fuzz_serve_request]=json)
declare -A max_len=([fuzz_safetensors]=8192 [fuzz_safetensors_index]=8192 [fuzz_hf_config]=8192
  [fuzz_pack_reader]=65536 [fuzz_tokenizer]=16384 [fuzz_tokenize_text]=8192 [fuzz_chat_template]=16384
  [fuzz_serve_request]=16384)
all=(fuzz_safetensors fuzz_safetensors_index fuzz_hf_config fuzz_pack_reader fuzz_tokenizer
  fuzz_tokenize_text fuzz_chat_template fuzz_serve_request)
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

if [ ! -x "$build/bin/${targets[0]}" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSHARDLM_TESTS=ON \
    -DSHARDLM_SANITIZE=address -DSHARDLM_FUZZ=ON -DSHARDLM_CUDA=OFF -DSHARDLM_VULKAN=OFF \
    -DSHARDLM_MPI=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# One target: its summary line on stdout, the finding's excerpt on stderr; non-zero on a finding.
fuzz_one() {
  local t=$1
  local work="$out/$t"
  mkdir -p "$work/corpus" "$work/findings"
  local args=(-max_total_time="$seconds" -runs="$runs" -timeout=10 -rss_limit_mb=2560
    -malloc_limit_mb=2048 -max_len="${max_len[$t]}" -print_final_stats=1
    -artifact_prefix="$work/findings/")
  [ "${dict[$t]}" != - ] && args+=(-dict="tests/fuzz/dict/${dict[$t]}.dict")
  [ "$jobs" -gt 1 ] && args+=(-fork="$jobs")
  local log="$work/log.txt" rc=0
  "$build/bin/$t" "${args[@]}" "$work/corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  local execs rate last cov ft ncorp finding
  execs=$(grep -oP 'stat::number_of_executed_units: \K[0-9]+' "$log" | tail -1 || true)
  rate=$(grep -oP 'stat::average_exec_per_sec: +\K[0-9]+' "$log" | tail -1 || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  ncorp=$(find "$work/corpus" -type f | wc -l)
  finding=$(ls "$work/findings" 2>/dev/null | head -1)
  echo "$t: ${execs:-?} execs, ${rate:-?}/s, cov ${cov:-?}, ft ${ft:-?}, corpus $ncorp, ${finding:-none} (log: $log)"
  if [ "$rc" -ne 0 ] || [ -n "$finding" ]; then
    grep -m1 -B2 -A12 -E 'ERROR: |runtime error|FUZZ FINDING' "$log" >&2 || tail -20 "$log" >&2
    return 1
  fi
}

for t in "${targets[@]}"; do
  [ -n "${dict[$t]:-}" ] || { echo "fuzz.sh: unknown target $t" >&2; exit 2; }
done
failed=0
if [ "$parallel" -le 1 ]; then
  for t in "${targets[@]}"; do fuzz_one "$t" || failed=1; done
  exit $failed
fi
# Several at once, printed in the targets' order.
. tools/lib/each_parallel.sh
each_parallel "$parallel" "$out/parallel" fuzz_one "${targets[@]}" || failed=1
exit $failed
