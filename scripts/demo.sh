#!/usr/bin/env bash
# The main job: installs what is missing, builds posattn (Release) and runs posattn-demo, which
# computes attention for every positional method on the best backend available and checks it.
# With --study it then runs the default precision study (posattn-drift: experiments a, b, c;
# about 4 minutes on 2 shared cores), writing CSV, JSON and PNG files to build/demo/drift-out,
# and the same experiments on the small synthetic activations of tests/data/acts-small (the
# format a model's captured q, k, v take: docs/precision.md, "Real activations") to
# build/demo/drift-acts (seconds).
# Usage: bash scripts/demo.sh [--study] [posattn-demo options]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

study=0
if [ "${1:-}" = "--study" ]; then study=1; shift; fi

stage "dependencies"
ensure_build_deps
stage "build (demo preset, Release)"
cmake --preset demo -S "$REPO" -B "$BUILD_ROOT/demo"
targets=(posattn-demo)
[ "$study" -eq 1 ] && targets+=(posattn-drift)
cmake --build "$BUILD_ROOT/demo" -j "$JOBS" --target "${targets[@]}"
stage "posattn-demo"
"$BUILD_ROOT/demo/bench/posattn-demo" "$@"
if [ "$study" -eq 1 ]; then
  stage "precision study (posattn-drift, default)"
  command -v gnuplot >/dev/null 2>&1 || apt_install gnuplot-nox ||
    echo "gnuplot could not be installed: the study writes CSV and JSON only"
  "$BUILD_ROOT/demo/bench/drift/posattn-drift" --out "$BUILD_ROOT/demo/drift-out"
  "$BUILD_ROOT/demo/bench/drift/posattn-drift" --activations "$REPO/tests/data/acts-small" \
    --out "$BUILD_ROOT/demo/drift-acts"
fi
stages_report
