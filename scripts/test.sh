#!/usr/bin/env bash
# The whole test suite, with set-up: installs what is missing, then
#   1. Release build (ci preset) and every ctest label (cpu, emu), output on failure;
#   2. exported-symbol check of libposattn.so (posattn_* only);
#   3. install to a temporary prefix; tests/consumer built against it with find_package(posattn)
#      and with pkg-config, by a plain C compiler, and run;
#   4. posattn-demo (the README's main job) as a smoke test; the server_cuda example run (EMU, or
#      REF until EMU has plan support) and compiled with its CUDA path; the NCCL ring example
#      compiled;
#   5. with nvcc (cuda-ci preset): every kernel compiled for sm_80 and sm_90a with a ptxas
#      spill/local-memory report (the tensor-core prefill instances in bf16 only: f16 compiles to
#      the same registers; `cmake --workflow --preset cuda-check` builds both), the CUDA-enabled
#      library's exports, and the demo against it (no GPU needed), and posattn-sass's static model
#      of the main instances against bench/sass/baseline.json;
#   6. ASan + UBSan build (asan preset, clang-14 where it has its sanitizer runtimes, else gcc:
#      bf16 tensor-core instances at head dims 64, 96, 128, 256, one per tile shape) and the cpu
#      and emu labels under it, less the EMU kernel sweeps (asan_sweeps below: stage 1 runs them);
#   7. ThreadSanitizer build (tsan preset) of the concurrency test, run under TSan;
#   8. with clang-14: the libFuzzer targets (fuzz preset, ASan + UBSan), their committed corpora
#      and issue reproducers replayed, then each target fuzzed with a fixed seed for a fixed number
#      of executions (~30 s each; at most POSATTN_FUZZ_SECONDS, default 60) on a scratch copy of
#      its corpus; a crash fails the stage and leaves its input in <build>/fuzz-artifacts/<target>/
#      (docs/reliability.md).
# Builds that fail stop the script; failing tests mark their stage FAILED and the script goes on,
# so that one run shows every failure; the exit status is non-zero if any stage failed. Prints
# the time of each stage. Environment: POSATTN_BUILD_ROOT (default <repo>/build),
# POSATTN_JOBS (default 2), POSATTN_REQUIRED_LABELS (labels that must have tests; default "cpu",
# plus "emu" once tests/emu/CMakeLists.txt exists),
# POSATTN_FAIL_ON_SPILLS=1 to fail when a kernel spills, POSATTN_FUZZ_SECONDS (per fuzz target).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# cpu always; emu as soon as tests/emu has its CMakeLists.txt (the emulator issue)
default_labels="cpu"
[ -f "$REPO/tests/emu/CMakeLists.txt" ] && default_labels="cpu emu"
REQUIRED_LABELS="${POSATTN_REQUIRED_LABELS:-$default_labels}"

ctest_labels_present() { # ctest_labels_present BUILD_DIR: fails if a required label has no test
  local dir="$1" label n
  for label in $REQUIRED_LABELS; do
    n="$(ctest --test-dir "$dir" -N -L "^${label}\$" | sed -n 's/^Total Tests: //p')"
    printf 'label %-4s %s tests\n' "$label" "${n:-0}"
    [ "${n:-0}" -gt 0 ] || die "no ctest has the label '$label' in $dir"
  done
}

# seed_ctest_costs BUILD_DIR PRESET: the recorded times of the suite's slow tests
# (tests/ctest-costs/PRESET.txt, CTest's own cost file format), so that `ctest -j` starts them
# first instead of finding them last in a fresh build folder, where 2 cores then wait on one test.
# Tests missing from the file only lose that ordering.
seed_ctest_costs() {
  local dir="$1/Testing/Temporary" src="$REPO/tests/ctest-costs/$2.txt"
  [ -f "$src" ] && [ ! -f "$dir/CTestCostData.txt" ] || return 0
  mkdir -p "$dir" && cp "$src" "$dir/CTestCostData.txt"
}

stage "dependencies"
ensure_build_deps tests
# cuobjdump for posattn-sass (its unit test and the CUDA stage's model check)
if command -v nvcc >/dev/null 2>&1; then ensure_sass_deps; fi

stage "release build (ci preset)"
configure_build ci
stage "release tests (all labels)"
ctest_labels_present "$BUILD_ROOT/ci"
seed_ctest_costs "$BUILD_ROOT/ci" ci
ctest --test-dir "$BUILD_ROOT/ci" --output-on-failure -j "$JOBS" || stage_failed "see the ctest output above"

check_exports() { # check_exports LIB: every dynamic symbol LIB defines starts with posattn_
  local lib bad
  lib="$(readlink -f "$1")"
  bad="$(nm -D --defined-only "$lib" | awk '$2 != "A" && $3 !~ /^posattn_/ && $3 !~ /^(_init|_fini|_edata|_end|__bss_start)$/ { print $3 }')"
  printf '%s: %s exported symbols; needs: %s\n' "$lib" \
    "$(nm -D --defined-only "$lib" | grep -c ' posattn_')" \
    "$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  [ -z "$bad" ] || { printf 'exported without the posattn_ prefix:\n%s\n' "$bad"; return 1; }
  echo "all exported symbols are posattn_*"
}

stage "exported symbols"
check_exports "$BUILD_ROOT/ci/libposattn.so" || stage_failed "libposattn.so exports other symbols"

stage "install + consumer (CMake, pkg-config)"
prefix="$BUILD_ROOT/install"
rm -rf "$prefix" "$BUILD_ROOT/consumer"
cmake --install "$BUILD_ROOT/ci" --prefix "$prefix" >/dev/null
find "$prefix" -type f -o -type l | sed "s|^$prefix/|  |" | sort
cmake -S "$REPO/tests/consumer" -B "$BUILD_ROOT/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$BUILD_ROOT/consumer"
ctest --test-dir "$BUILD_ROOT/consumer" --output-on-failure -V | grep -E '^[0-9]+: ' | sed 's/^[0-9]*: /  /'
pcdir="$(dirname "$(find "$prefix" -name posattn.pc | head -1)")"
PKG_CONFIG_PATH="$pcdir" pkg-config --modversion posattn
# shellcheck disable=SC2046 # word splitting of the flags is intended
cc -std=c99 -Wall -Wextra -pedantic-errors "$REPO/tests/consumer/main.c" \
  $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs posattn) -lm \
  -o "$BUILD_ROOT/consumer/posattn_consumer_pc"
LD_LIBRARY_PATH="$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir posattn)" \
  "$BUILD_ROOT/consumer/posattn_consumer_pc" > "$BUILD_ROOT/consumer/pc.out" ||
  { cat "$BUILD_ROOT/consumer/pc.out"; die "the pkg-config build of the consumer failed"; }
echo "pkg-config consumer: $(grep -c ' ok$' "$BUILD_ROOT/consumer/pc.out") checks ok"

stage "posattn-demo"
"$BUILD_ROOT/ci/bench/posattn-demo" || stage_failed "a demo check failed"

# docs/examples/server_cuda.c, the plan/run serving loop: on EMU when the EMU plan backend is
# built (exit status 77 = no plan support on that backend: then on REF, and said so); also
# compiled as strict C11 without and, where cuda_runtime.h exists, with its CUDA graph path.
stage "server_cuda example (plan/run serving loop)"
server_ex="$BUILD_ROOT/ci/docs/examples/posattn_example_server_cuda"
rc=0
"$server_ex" emu || rc=$?
if [ "$rc" -eq 77 ]; then
  echo "server_cuda: the EMU backend has no plan support in this build: running it on REF instead"
  "$server_ex" ref || stage_failed "the server_cuda example failed on REF"
elif [ "$rc" -ne 0 ]; then
  stage_failed "the server_cuda example failed on EMU (status $rc)"
fi
cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I "$REPO/include" \
  "$REPO/docs/examples/server_cuda.c" || stage_failed "server_cuda.c does not compile cleanly"
if [ -f /usr/local/cuda/include/cuda_runtime.h ]; then
  cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -DPOSATTN_EXAMPLE_WITH_CUDA \
    -I "$REPO/include" -I /usr/local/cuda/include "$REPO/docs/examples/server_cuda.c" ||
    stage_failed "server_cuda.c (CUDA graph path) does not compile cleanly"
  echo "server_cuda.c compiled with its CUDA path (not run: needs a GPU)"
fi

# docs/examples/ring_attention.c: built by the ci preset when the toolkit's NCCL is found; here
# also compiled as strict C99 so that warnings fail. It needs >= 2 GPUs to run: never run in CI.
stage "ring_attention example (NCCL; compiled, not run)"
nccl_inc="$(dirname "$(ls /usr/local/cuda/include/nccl.h /usr/include/nccl.h 2>/dev/null | head -1)" 2>/dev/null || true)"
if [ -n "$nccl_inc" ] && [ -f "$nccl_inc/nccl.h" ]; then
  [ -x "$BUILD_ROOT/ci/docs/examples/posattn_example_ring_attention" ] ||
    stage_failed "nccl.h is in $nccl_inc but the ci build did not build posattn_example_ring_attention"
  cc -std=c99 -Wall -Wextra -Werror -fsyntax-only -I "$REPO/include" -I "$nccl_inc" \
    -I /usr/local/cuda/include "$REPO/docs/examples/ring_attention.c" ||
    stage_failed "ring_attention.c does not compile cleanly"
  echo "ring_attention.c compiled against $nccl_inc/nccl.h (not run: needs >= 2 GPUs)"
else
  echo "no NCCL (nccl.h) on this machine: ring_attention example skipped"
fi

if command -v nvcc >/dev/null 2>&1; then
  # Every nvcc target (the bf16 tensor-core instances) with -Xptxas -v, then the CUDA-enabled library
  # (static cudart inside) and the demo: on a machine without a GPU the CUDA backend must answer
  # NO_DEVICE and everything else must still work.
  stage "CUDA build (sm_80, sm_90a) + ptxas report"
  mkdir -p "$BUILD_ROOT/logs"
  cudalog="$BUILD_ROOT/logs/cuda-ci.log"
  rc=0
  { cmake --preset cuda-ci -S "$REPO" -B "$BUILD_ROOT/cuda-ci" &&
      cmake --build "$BUILD_ROOT/cuda-ci" -j "$JOBS" \
        --target posattn_cuda_check posattn posattn-demo; } >"$cudalog" 2>&1 || rc=$?
  # the log minus ptxas -v's per-kernel lines (summarised by ptxas-report.sh below)
  grep -vE '^ptxas info|^ +[0-9]+ bytes stack frame' "$cudalog" || true
  if [ "$rc" -ne 0 ]; then
    stage_failed "nvcc build failed (status $rc; log: $cudalog)"
  else
    "$REPO/scripts/ptxas-report.sh" "$cudalog" || stage_failed "kernels spill"
    stage "CUDA-enabled library: exports, demo"
    check_exports "$BUILD_ROOT/cuda-ci/libposattn.so" ||
      stage_failed "the CUDA-enabled libposattn.so exports other symbols"
    "$BUILD_ROOT/cuda-ci/bench/posattn-demo" || stage_failed "a demo check failed"
    # the static SASS model of the main instances (objects of the build above) against the
    # committed baseline: a predicted ceiling down > 3 %, a new spill or fewer CTAs per SM fails
    stage "posattn-sass (static SASS model vs baseline)"
    python3 "$REPO/bench/sass/posattn_sass.py" --build "$BUILD_ROOT/cuda-ci" \
      --json "$BUILD_ROOT/logs/posattn-sass.json" --baseline "$REPO/bench/sass/baseline.json" ||
      stage_failed "a main instance's predicted ceiling dropped or it spills (see above)"
  fi
else
  echo "no nvcc on this machine: CUDA build skipped"
fi

# clang-14 where its sanitizer runtimes are (the fuzz stage needs them too): this build in 282 s
# and its tests in 210 s, where gcc 12 took 541 s (its tests, the sweeps still in: 405 s) on
# 2026-12-04; else gcc
asan_cc=() asan_cxx=gcc
if ensure_fuzz_toolchain; then
  asan_cc=(-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14) asan_cxx=clang-14
fi
stage "asan build (ASan + UBSan, $asan_cxx)"
configure_build asan "${asan_cc[@]}"
stage "asan tests (cpu, emu)"
seed_ctest_costs "$BUILD_ROOT/asan" asan
# Left out under ASan: the EMU kernel sweeps (many shapes x kinds x masks of kernel code that the
# tests left in run on smaller shapes) and a model tool's check. The Release stage runs them, with
# the emulator's own bounds and race checks; under gcc's ASan they took 259 of the 604 test-seconds
# (2026-12-04).
asan_sweeps='^(PrefillWgmma\.band_kinds_times_every_mask_hd64_hd128|PrefillWgmma\.hd256_every_pe_times_every_mask'
asan_sweeps+='|PrefillWgmma\.fire_widest_mlp_band_hd128_per_element_hd256'
asan_sweeps+='|PrefillMma\.distance_band_and_explicit_positions_every_bias_kind'
asan_sweeps+='|PrefillMma\.hd128_every_pe_kind_odd_shapes|PrefillMma\.hd80_96_112_two_slabs_several_blocks'
asan_sweeps+='|posattn_tile_walk_check)$'
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest --test-dir "$BUILD_ROOT/asan" -L 'cpu|emu' -E "$asan_sweeps" --output-on-failure -j "$JOBS" ||
  stage_failed "see the ctest output above"

stage "tsan build (concurrency test)"
cmake --preset tsan -S "$REPO" -B "$BUILD_ROOT/tsan" >/dev/null
cmake --build "$BUILD_ROOT/tsan" -j "$JOBS" --target posattn_tests_threads
stage "tsan test (threads)"
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
  ctest --test-dir "$BUILD_ROOT/tsan" -L threads --output-on-failure -j "$JOBS" ||
  stage_failed "see the ctest output above"

# fuzz_target NAME RUNS SECONDS: one bounded libFuzzer run, fixed seed (the same inputs on every
# run of the same code), RUNS executions or SECONDS, whichever ends first, on a scratch copy of the
# committed corpus (new inputs stay in the build tree) plus the issue reproducers.
fuzz_target() {
  local t="$1" runs="$2" secs="$3" dir="$BUILD_ROOT/fuzz" log rc=0 regs=()
  log="$dir/fuzz-logs/$t.log"
  rm -rf "$dir/fuzz-corpus/$t" "$dir/fuzz-artifacts/$t"
  mkdir -p "$dir/fuzz-corpus/$t" "$dir/fuzz-artifacts/$t" "$dir/fuzz-logs"
  [ -d "$REPO/tests/fuzz/regressions/$t" ] && regs=("$REPO/tests/fuzz/regressions/$t")
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$dir/tests/fuzz/posattn_fuzz_$t" -seed=1 -runs="$runs" -max_total_time="$secs" -timeout=25 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$dir/fuzz-artifacts/$t/" \
    "$dir/fuzz-corpus/$t" "$REPO/tests/fuzz/corpus/$t" "${regs[@]}" >"$log" 2>&1 || rc=$?
  printf 'fuzz %-8s %8s executions in %4s s, %5s coverage points, %3s corpus inputs, status %s\n' \
    "$t" "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
    "$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")" \
    "$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)" \
    "$(find "$dir/fuzz-corpus/$t" "$REPO/tests/fuzz/corpus/$t" -type f | wc -l)" "$rc"
  if [ "$rc" -ne 0 ]; then
    grep -E 'check failed|runtime error|ERROR:|SUMMARY' "$log" | head -5
    echo "fuzz target $t failed: see $log and $dir/fuzz-artifacts/$t/"
    return 1
  fi
}

if ensure_fuzz_toolchain; then
  stage "fuzz build (clang-14, ASan + UBSan)"
  cmake --preset fuzz -S "$REPO" -B "$BUILD_ROOT/fuzz" >/dev/null
  cmake --build "$BUILD_ROOT/fuzz" -j "$JOBS" --target posattn_fuzzers
  stage "fuzz corpora + reproducers (replay)"
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir "$BUILD_ROOT/fuzz" -L fuzz --output-on-failure -j "$JOBS" ||
    stage_failed "see the ctest output above"
  # executions per target: ~30 s each on the CI machine (docs/reliability.md), capped in time
  fuzz_secs="${POSATTN_FUZZ_SECONDS:-60}"
  stage "fuzz run (seed 1, <= ${fuzz_secs} s per target)"
  # $JOBS targets at a time (each libFuzzer run is one process; fixed executions, so the inputs
  # do not depend on the sharing), their reports printed in order afterwards
  fuzz_targets="forward:1200 decode:500 append:6000 pe:400000 nan:700"
  sums="$BUILD_ROOT/fuzz/fuzz-logs/summaries"
  rm -rf "$sums" && mkdir -p "$sums"
  running=0
  for tr in $fuzz_targets; do
    t="${tr%%:*}"
    { fuzz_target "$t" "${tr#*:}" "$fuzz_secs" >"$sums/$t.out" 2>&1 || touch "$sums/$t.failed"; } &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
  done
  wait
  for tr in $fuzz_targets; do
    t="${tr%%:*}"
    cat "$sums/$t.out"
    [ ! -f "$sums/$t.failed" ] || stage_failed "fuzz target $t (see above)"
  done
else
  echo "no clang-14 with libFuzzer on this machine: fuzz stages skipped"
fi

if stages_report; then
  echo "all stages passed"
else
  echo "FAILED: see the stages marked FAILED above" >&2
  exit 1
fi
