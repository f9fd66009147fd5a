#!/usr/bin/env bash
# The concurrency-heavy tests once more under sanitizers (part of tools/test.sh): the step
# engine (batching, preemption, the 64-request stress), speculative decoding, the block manager,
# the threads communicator and (TSan only) the HTTP server, built with ASan+UBSan (leaks on) and
# with TSan in their own build folders (CPU backend only, optimized, no debug info: it is the
# build time CI pays). A finding fails the run. The session tests (which pull in the tokenizer
# library) were run this way by hand; add api_session_test to `base_targets` to include them.
#   bash tools/sanitize.sh            both
#   bash tools/sanitize.sh address    one of them
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
kinds=("${@:-address thread}")
base_targets=(batching_step_engine_test batching_speculation_test engine_speculation_test
  engine_block_manager_test runtime_comm_test)
for kind in ${kinds[@]}; do
  targets=("${base_targets[@]}")
  # The HTTP server's threads (a connection thread per client, the serving loop's driver) under
  # TSan; its ASan run is by hand (docs/server.md), to keep CI's build time down.
  [ "$kind" = thread ] && targets+=(serve_test)
  dir="build-$kind"
  [ "$kind" = address ] && dir=build-asan
  [ "$kind" = thread ] && dir=build-tsan
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSHARDLM_TESTS=ON -DSHARDLM_SANITIZE="$kind" \
    -DSHARDLM_CUDA=OFF -DSHARDLM_VULKAN=OFF -DSHARDLM_MPI=OFF >/dev/null
  cmake --build "$dir" -j "$jobs" --target "${targets[@]}"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  for t in "${targets[@]}"; do
    filter='*'
    # Under TSan the fixture-parity sweeps are slow and single-threaded in what they check; the
    # policy tests (preemption, stress with cancels) are the concurrent part.
    [ "$kind" = thread ] && [ "$t" = batching_step_engine_test ] && filter='StepEnginePolicyTest.*'
    # Speculation runs on the driver thread; under TSan one pair's sweep covers its use of the
    # rank threads (the draft's and the target's), the rest is ASan's.
    [ "$kind" = thread ] && [ "$t" = batching_speculation_test ] &&
      filter='Fixtures/SpeculationPairTest.*/qwen2_qkv_bias_tied_f32'
    [ "$kind" = thread ] && [ "$t" = engine_speculation_test ] && continue
    echo "== $kind: $t ($filter)"
    "$dir/bin/$t" --gtest_filter="$filter" --gtest_brief=1
  done
done
