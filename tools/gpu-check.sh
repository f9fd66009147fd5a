#!/usr/bin/env bash
# GPU verification of the cuda backend (issue 7): builds with CUDA for the GPU that is present,
# runs the CUDA tests for real, and runs the benchmarks the issue asks for, writing everything
# under $OUT (the device tool's output folder) or ./gpu-results.
#
#   bash tools/gpu-check.sh build     configure + build the CUDA targets     (~3-5 min, 16 cores)
#   bash tools/gpu-check.sh test      CUDA tests (ops, paged KV ops + step engine, comms, HF
#                                     parity at TP 1/2/4, graphs, OOM)
#   bash tools/gpu-check.sh bench     Qwen3-0.6B shape: kernels, tp 1 (graphs on/off), tp 2, tp 4
#   bash tools/gpu-check.sh bench8b   Llama-3-8B shape, tp 1 (graphs on/off): the 80% target
#   bash tools/gpu-check.sh all       all of the above in one go (> 10 min: split it when a
#                                     command has a time limit)
#   bash tools/gpu-check.sh full      the whole ctest suite of the GPU build (CPU tests too)
#
# Each stage appends to $OUT/summary.txt; the test stages also leave gtest XML and logs there.
# Random checkpoints are written in C++ (shardlm-cuda-bench --make-checkpoint), so no Python is
# needed. Scratch goes to $SCRATCH (default /tmp/shardlm-gpu, ~35 GB for the 8B stage).
set -uo pipefail
cd "$(dirname "$0")/.."

stage=${1:-all}
out=${OUT:-$PWD/gpu-results}
build=${BUILD:-build-gpu}
scratch=${SCRATCH:-/tmp/shardlm-gpu}
jobs=$(nproc)
mkdir -p "$out" "$scratch"
summary="$out/summary.txt"

say() { echo "== $*" | tee -a "$summary"; }

gpu_arch() {
  local cap
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
  echo "${cap:-90}"
}

do_build() {
  say "build: $(date -u +%FT%TZ)"
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
  nvcc --version > "$out/nvcc.txt" 2>&1 || true
  local arch
  arch=$(gpu_arch)
  say "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1); sm_$arch"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSHARDLM_CUDA=ON \
    -DSHARDLM_CUDA_ARCHS="$arch" > "$out/configure.txt" 2>&1 || { say "configure FAILED"; return 1; }
  grep -i -E "nccl|cuda" "$out/configure.txt" | tee -a "$summary"
  local targets="cuda_host_test cuda_ops_test cuda_paged_ops_test backend_ops_test cuda_comm_test cuda_model_test shardlm-cuda-bench shardlm-pack"
  # shardlm-bench (apps/, the CPU+GPU bench of issue 6) when it exists in this tree.
  [ -d apps/shardlm-bench ] && targets="$targets shardlm-bench"
  local t0=$SECONDS
  if cmake --build "$build" -j "$jobs" --target $targets > "$out/build.txt" 2>&1; then
    say "build OK in $((SECONDS - t0)) s"
  else
    say "build FAILED (see build.txt)"; tail -40 "$out/build.txt"; return 1
  fi
}

run_test() {  # binary [gtest args]
  local name=$1; shift
  "$build/bin/$name" --gtest_output="xml:$out/$name.xml" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  say "$name: rc $rc, $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/$name.log" | tr '\n' ' ')"
  grep -E '^\[  FAILED  \]' "$out/$name.log" | tee -a "$summary"
  return $rc
}

do_test() {
  say "test: $(date -u +%FT%TZ)"
  local rc=0
  run_test cuda_host_test || rc=1
  run_test cuda_ops_test || rc=1
  run_test cuda_paged_ops_test || rc=1
  run_test backend_ops_test --gtest_filter='*/cuda__*:BackendOpsCoverage.*' || rc=1
  run_test cuda_comm_test || rc=1
  run_test cuda_model_test || rc=1
  grep -h -E "^CUDA-PARITY|^cuda [0-9]+:" "$out/cuda_model_test.log" | tee -a "$summary"
  grep -h -E "^CUDA-STEP" "$out/cuda_paged_ops_test.log" | tee -a "$summary"
  return $rc
}

pack() {  # checkpoint tp out
  # No --gpu/--gpu-mem: the packer plans for the GPU nvidia-smi reports.
  "$build/bin/shardlm-pack" --model "$1" --out "$3" --tp "$2" -q \
    > "$out/pack-$(basename "$3").txt" 2>&1
}

bench_model() {  # label pack_dir [env...]
  local label=$1 dir=$2; shift 2
  say "bench $label"
  env SHARDLM_CUDA_VERBOSE=1 "$@" "$build/bin/shardlm-cuda-bench" --pack "$dir" --prompt-len 512 --gen 128 --reps 3 \
    2>&1 | tee "$out/bench-$label.txt" | tee -a "$summary"
  if [ -x "$build/bin/shardlm-bench" ]; then
    env "$@" "$build/bin/shardlm-bench" --pack "$dir" --backend cuda --prompt-len 512 --gen 128 \
      --reps 3 --no-probe --json > "$out/shardlm-bench-$label.json" 2>&1 ||
      say "shardlm-bench --backend cuda failed for $label (see shardlm-bench-$label.json)"
  fi
}

do_bench() {
  say "bench (Qwen3-0.6B shape): $(date -u +%FT%TZ)"
  "$build/bin/shardlm-cuda-bench" --kernels 2>&1 | tee "$out/kernels.txt" | tee -a "$summary"
  local ckpt="$scratch/qwen3-0.6b"
  [ -f "$ckpt/model.safetensors" ] ||
    "$build/bin/shardlm-cuda-bench" --make-checkpoint qwen3-0.6b --out "$ckpt" | tee -a "$summary"
  for tp in 1 2 4; do
    [ -f "$scratch/q06-tp$tp/rank-0-of-$tp.shardlm" ] || pack "$ckpt" "$tp" "$scratch/q06-tp$tp"
  done
  bench_model qwen3-0.6b-tp1 "$scratch/q06-tp1"
  bench_model qwen3-0.6b-tp1-nographs "$scratch/q06-tp1" SHARDLM_CUDA_GRAPHS=0
  bench_model qwen3-0.6b-tp2 "$scratch/q06-tp2"
  bench_model qwen3-0.6b-tp4 "$scratch/q06-tp4"
}

do_bench8b() {
  say "bench (Llama-3-8B shape): $(date -u +%FT%TZ)"
  local ckpt="$scratch/llama3-8b" dir="$scratch/l8-tp1"
  if [ ! -f "$dir/rank-0-of-1.shardlm" ]; then
    "$build/bin/shardlm-cuda-bench" --make-checkpoint llama3-8b --out "$ckpt" | tee -a "$summary"
    local t0=$SECONDS
    pack "$ckpt" 1 "$dir" && say "packed llama3-8b tp1 in $((SECONDS - t0)) s"
    rm -rf "$ckpt"  # 16 GB: keep the disk for the pack
  fi
  bench_model llama3-8b-tp1 "$dir"
  bench_model llama3-8b-tp1-nographs "$dir" SHARDLM_CUDA_GRAPHS=0
}

case "$stage" in
  build) do_build ;;
  test) do_test ;;
  bench) do_bench ;;
  bench8b) do_bench8b ;;
  all) do_build && { do_test; do_bench; do_bench8b; } ;;
  full)
    say "full ctest: $(date -u +%FT%TZ)"
    cmake --build "$build" -j "$jobs" > "$out/build-full.txt" 2>&1 || say "full build FAILED"
    ctest --test-dir "$build" --output-on-failure -j "$jobs" > "$out/ctest-full.txt" 2>&1
    say "ctest rc $?: $(grep -E 'tests passed|tests failed' "$out/ctest-full.txt")"
    ;;
  *) echo "usage: $0 build|test|bench|bench8b|all|full" >&2; exit 2 ;;
esac
