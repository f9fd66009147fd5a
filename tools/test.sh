#!/usr/bin/env bash
# Sets up a machine (Debian packages), builds shardlm and runs the whole test suite.
# This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage's wall time is printed as it ends ("== time: ..."), to see where CI's time goes.
stage() { echo "== time: $1 took $((SECONDS - t0)) s (total $SECONDS s)"; t0=$SECONDS; }
t0=$SECONDS
bash tools/install-deps.sh
stage "install-deps"
jobs=$(nproc)
. tools/lib/compiler_cache.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHARDLM_TESTS=ON "${compiler_cache[@]}"
cmake --build build -j "$jobs"
stage "build"
ctest --test-dir build --output-on-failure -j "$jobs"
stage "unit suite"
# The concurrency-heavy tests once more under ASan+UBSan and TSan (tools/sanitize.sh).
bash tools/sanitize.sh
stage "sanitizers"
