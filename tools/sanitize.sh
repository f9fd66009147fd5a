#!/usr/bin/env bash
# The sanitizer stage of tools/test.sh (docs/reliability.md):
#   address: the whole unit suite once more, built with clang under ASan+UBSan (leak checking on),
#            then every fuzz target of tests/fuzz for FUZZ_SECONDS (default 20) each, from the same
#            build (SHARDLM_FUZZ: libFuzzer coverage in the parsers). Left out of the ASan run: the
#            Python ctypes example and the installed-package build (a sanitized libshardlm.so needs
#            the sanitizer runtime preloaded), the SIGKILL sweeps of interrupted packing, the
#            chi-square sampling test, the single-threaded and deterministic variants of the op
#            harness (the same kernels as the 3-thread variants that do run), and model-scale runs
#            of code the smaller tests cover: the quantized packs' perplexity, TP agreement and
#            f8e4m3 KV cache (the perplexity path runs in DemoModelsTest.Perplexity*, the quantized
#            kernels in runtime_quant_test and kernels_test, the f8e4m3 cache in the op harness)
#            and the demo pair's speculation (batching_speculation_test), the 1-thread variants of
#            the per-ISA kernel tests (the 3-thread ones run the same kernels over split ranges,
#            which include the whole range's ends), and at the amx level the ops and paged-attention
#            tests whose code is the avx512 level's (only matmuls differ there): all of them run in
#            the plain build, and leaving them out keeps CI's time down. The fuzz targets run one
#            per core at a time.
#   thread:  the concurrent parts under TSan (gcc): the step engine's policy tests (preemption, the
#            64-request stress with cancels), speculation on the rank threads, the block manager,
#            the threads communicator, the HTTP server, and the C ABI test (two sessions generating
#            on two threads, cancel from another thread, requests batched in shared steps). The
#            programs run one per core at a time, their output printed in order at the end.
# A finding fails the run.
#   bash tools/sanitize.sh            both
#   bash tools/sanitize.sh address    one of them
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
kinds=("${@:-address thread}")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
failed=0
. tools/lib/each_parallel.sh
. tools/lib/compiler_cache.sh
# One TSan program with its filter; non-zero on a finding or a failed test.
tsan_one() {
  local t=$1 filter='*'
  # Under TSan the fixture-parity sweeps are slow and single-threaded in what they check; the
  # policy tests (preemption, stress with cancels) are the concurrent part.
  [ "$t" = batching_step_engine_test ] && filter='StepEnginePolicyTest.*'
  # Speculation runs on the driver thread; one pair's sweep covers its use of the rank threads
  # (the draft's and the target's).
  [ "$t" = batching_speculation_test ] && filter='Fixtures/SpeculationPairTest.*/qwen2_qkv_bias_tied_f32'
  echo "== thread: $t ($filter)"
  if [ "$t" = api_abi_test ]; then
    build-tsan/bin/api_abi_test build-tsan/tests/api/fixture
  else
    "build-tsan/bin/$t" --gtest_filter="$filter" --gtest_brief=1
  fi
}
for kind in ${kinds[@]}; do
  if [ "$kind" = address ]; then
    CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DSHARDLM_TESTS=ON \
      -DSHARDLM_SANITIZE=address -DSHARDLM_FUZZ=ON -DSHARDLM_CUDA=OFF -DSHARDLM_VULKAN=OFF \
      -DSHARDLM_MPI=OFF "${compiler_cache[@]}" >/dev/null
    cmake --build build-asan -j "$jobs"
    echo "== address: the unit suite under ASan+UBSan"
    ctest --test-dir build-asan -j "$jobs" --output-on-failure \
      -E 'api_python_example|api_install_package|PackInterrupt\.|Speculation\.SampledTokensFollowTheTargetDistributionExactly|QuantizedPackTest\.(Perplexity|QuantizedPacksAgree|F8E4M3KvCache)|DemoModelsTest\.Speculation|Ops/BackendOps\.MatchesRef/cpu_[a-z0-9]+_t(1|3_det)__|Ops/BackendOps\.MatchesRef/cpu_amx_t3__[^m]|IsaThreads/(Paged)?KernelTest\..*/[a-z0-9]+_1_threads( |$)|IsaThreads/PagedKernelTest\..*/amx_'
    echo "== address: fuzz targets, ${FUZZ_SECONDS:-20} s each"
    bash tools/fuzz.sh --build-dir build-asan --seconds "${FUZZ_SECONDS:-20}" --parallel "$jobs"
    echo "== time: address stage done at $SECONDS s"
    continue
  fi
  targets=(batching_step_engine_test batching_speculation_test engine_block_manager_test
    runtime_comm_test serve_test api_abi_test api_make_chat_pack)
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Release -DSHARDLM_TESTS=ON -DSHARDLM_SANITIZE=thread \
    -DSHARDLM_CUDA=OFF -DSHARDLM_VULKAN=OFF -DSHARDLM_MPI=OFF "${compiler_cache[@]}" >/dev/null
  cmake --build build-tsan -j "$jobs" --target "${targets[@]}"
  build-tsan/bin/api_make_chat_pack build-tsan/tests/api/fixture tests/data/tokenizer/qwen3 >/dev/null
  # The programs run $jobs at a time (each is itself multi-threaded: what TSan watches is the
  # interleaving, not the speed), their output printed in this order once all are done.
  tsan=()
  for t in "${targets[@]}"; do [ "$t" = api_make_chat_pack ] || tsan+=("$t"); done
  each_parallel "$jobs" build-tsan/logs tsan_one "${tsan[@]}" || failed=1
  echo "== time: thread stage done at $SECONDS s"
done
exit $failed
