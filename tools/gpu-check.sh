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
#   bash tools/gpu-check.sh carried   test + bench (+ bench8b when time is left) from binaries
#                                     built on another machine: $BUILD/bin.tar.xz, its libraries
#                                     in $BUILD/lib, the source path the tests were compiled
#                                     with in $BUILD/source_dir (made with `pack-carried`); every
#                                     step under a timeout, the logs packed into one logs.tgz
#   bash tools/gpu-check.sh pack-carried   (on the build machine) strips and packs those binaries
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
  timeout "${TEST_TIMEOUT:-150}" "$build/bin/$name" --gtest_output="xml:$out/$name.xml" "$@" > "$out/$name.log" 2>&1
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
  env SHARDLM_CUDA_VERBOSE=1 "$@" timeout "${BENCH_TIMEOUT:-120}" "$build/bin/shardlm-cuda-bench" --pack "$dir" --prompt-len 512 --gen 128 --reps 3 \
    2>&1 | tee "$out/bench-$label.txt" | tee -a "$summary"
  if [ -x "$build/bin/shardlm-bench" ]; then
    env "$@" timeout "${BENCH_TIMEOUT:-120}" "$build/bin/shardlm-bench" --pack "$dir" --backend cuda --prompt-len 512 --gen 128 \
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
  bench_model qwen3-0.6b-tp1-graphs "$scratch/q06-tp1" SHARDLM_CUDA_GRAPHS=1
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
  bench_model llama3-8b-tp1-graphs "$dir" SHARDLM_CUDA_GRAPHS=1
}

# Per-kernel GPU time of a short 8B decode (graphs off, the default: every kernel its own launch):
# Nsight Compute's gpu__time_duration, summed per kernel name.
do_profile() {
  say "profile (Llama-3-8B shape, prompt 16, 8 decode steps): $(date -u +%FT%TZ)"
  local dir="$scratch/l8-tp1"
  [ -f "$dir/rank-0-of-1.shardlm" ] || do_bench8b
  command -v ncu > /dev/null || { say "ncu not found"; return 1; }
  timeout "${PROFILE_TIMEOUT:-150}" ncu --clock-control none \
    --metrics gpu__time_duration.sum --print-units base --csv --log-file "$out/profile.csv" \
    "$build/bin/shardlm-cuda-bench" --pack "$dir" --prompt-len 16 --gen 9 --reps 1 \
    > "$out/profile-run.txt" 2>&1 || say "ncu run failed (see profile-run.txt)"
  # Columns: ..., "Kernel Name", ..., "Metric Name", "Metric Unit", "Metric Value".
  python3 - "$out/profile.csv" << 'PY' | tee -a "$summary"
import csv, sys, collections, re
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
head = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
h = rows[head]
k, u, v = h.index("Kernel Name"), h.index("Metric Unit"), h.index("Metric Value")
scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
tot, cnt = collections.Counter(), collections.Counter()
for r in rows[head + 1:]:
    if len(r) <= v or not r[v]:
        continue
    name = re.sub(r"^void |\(anonymous namespace\)::|shardlm::(cuda::)?", "", r[k]).split("(")[0]
    tot[name[:70]] += float(r[v].replace(",", "")) * scale.get(r[u], 1.0)
    cnt[name[:70]] += 1
print(f"{'kernel':70s} {'calls':>6s} {'total us':>10s} {'mean us':>8s}")
for name, t in tot.most_common(25):
    print(f"{name:70s} {cnt[name]:6d} {t:10.1f} {t / cnt[name]:8.2f}")
print(f"{'all kernels':70s} {sum(cnt.values()):6d} {sum(tot.values()):10.1f}")
PY
}

# Batched decode on the GPU through the step engine (issue 13's ratio): N sequences vs one.
do_batch() {
  say "batch (Qwen3-0.6B shape, step engine): $(date -u +%FT%TZ)"
  local n
  for n in 8 32; do
    timeout "${BENCH_TIMEOUT:-120}" "$build/bin/shardlm-bench" --pack "$scratch/q06-tp1" \
      --backend cuda --concurrency "$n" --prompt-len 128 --gen 64 --reps 3 --no-probe \
      > "$out/batch-$n.txt" 2>&1 || say "shardlm-bench --concurrency $n failed"
    grep -i -E "concurrency|tok/s|ratio|x " "$out/batch-$n.txt" | head -12 | tee -a "$summary"
  done
}

carried_targets="cuda_host_test cuda_ops_test cuda_paged_ops_test backend_ops_test cuda_comm_test cuda_model_test shardlm-cuda-bench shardlm-pack shardlm-bench"

do_pack_carried() {  # on the build machine: $build -> $CARRY (default .gpu)
  local dst=${CARRY:-.gpu}
  rm -rf "$dst" && mkdir -p "$dst/bin" "$dst/lib"
  for t in $carried_targets; do strip -o "$dst/bin/$t" "$build/bin/$t" || return 1; done
  # Libraries a bare CUDA image lacks; libnccl and libcublas are found there instead.
  for t in $carried_targets; do ldd "$build/bin/$t"; done | awk '/=> \// {print $3}' | sort -u |
    grep -v -E '/(libz|libudev|libpcre2-8|libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|libnccl|libcuda)\.' |
    while read -r lib; do cp -L "$lib" "$dst/lib/"; done
  tar cJf "$dst/bin.tar.xz" -C "$dst" bin && rm -rf "$dst/bin"
  grep '^CMAKE_HOME_DIRECTORY' "$build/CMakeCache.txt" | cut -d= -f2 > "$dst/source_dir"
  du -sh "$dst" "$dst"/* "$dst"/lib/*
}

do_carried() {
  local t_start=$SECONDS
  say "carried binaries: $(date -u +%FT%TZ)"
  tar xJf "$build/bin.tar.xz" -C "$build" || { say "cannot unpack $build/bin.tar.xz"; return 1; }
  local src
  src=$(cat "$build/source_dir")
  if [ -n "$src" ] && [ ! -e "$src/tests/fixtures" ]; then
    mkdir -p "$(dirname "$src")" && ln -sfn "$PWD" "$src"
  fi
  local libdirs
  libdirs=$(find /usr /opt /lib -xdev \( -name 'libnccl.so.2' -o -name 'libcublas.so.1[0-9]' \) \
    2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
  export LD_LIBRARY_PATH="$(cd "$build" && pwd)/lib:${libdirs}${LD_LIBRARY_PATH:-}"
  say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
  say "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1)"
  ldd "$build/bin/cuda_ops_test" | grep -E 'not found|nccl|mimalloc' | tee -a "$summary"
  local st
  for st in ${STAGES:-test bench bench8b}; do
    if [ "$st" = bench8b ] || [ "$st" = profile ]; then
      if [ $((SECONDS - t_start)) -ge "${BENCH8B_BEFORE_S:-170}" ]; then
        say "$st skipped: $((SECONDS - t_start)) s used"
        continue
      fi
    fi
    case "$st" in
      test) do_test ;;
      testq)  # the op and model tests alone
        run_test cuda_ops_test
        run_test backend_ops_test --gtest_filter='*/cuda__*:BackendOpsCoverage.*'
        run_test cuda_model_test
        ;;
      bench) do_bench ;;
      bench8b) BENCH_TIMEOUT=150 do_bench8b ;;
      profile) do_profile ;;
      batch) do_batch ;;
    esac
  done
  say "done in $((SECONDS - t_start)) s"
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
  carried)  # the device tool returns at most 8 files: keep summary.txt and one archive
    do_carried
    tar czf "$scratch/logs.tgz" -C "$out" . && mv "$scratch/logs.tgz" "$out/" &&
      find "$out" -type f ! -name logs.tgz ! -name summary.txt -delete
    ;;
  pack-carried) do_pack_carried ;;
  *) echo "usage: $0 build|test|bench|bench8b|all|full|carried|pack-carried" >&2; exit 2 ;;
esac
