#!/usr/bin/env bash
# The main job: installs what is missing, builds posattn (Release) and runs posattn-demo, which
# computes attention for every positional method on the best backend available and checks it.
# Usage: bash scripts/demo.sh [posattn-demo options]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

stage "dependencies"
ensure_build_deps
stage "build (demo preset, Release)"
cmake --preset demo -S "$REPO" -B "$BUILD_ROOT/demo"
cmake --build "$BUILD_ROOT/demo" -j "$JOBS" --target posattn-demo
stage "posattn-demo"
"$BUILD_ROOT/demo/bench/posattn-demo" "$@"
stages_report
