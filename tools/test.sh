#!/usr/bin/env bash
# Sets up a machine (Debian packages), builds shardlm and runs the whole test suite.
# This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHARDLM_TESTS=ON
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"
# The concurrency-heavy tests once more under ASan+UBSan and TSan (tools/sanitize.sh).
bash tools/sanitize.sh
