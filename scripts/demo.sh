#!/usr/bin/env bash
# The main job: installs what is missing, builds posattn (Release) and runs posattn-demo, which
# computes attention for every positional method on the best backend available and checks it;
# on a machine with a GPU and nvcc it builds and runs the CUDA backend too.
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
# A usable GPU (nvidia-smi lists one of compute capability >= 8.0, what the kernels need) and
# nvcc: build the CUDA backend with its tensor-core kernels for this GPU only, and the demo runs
# every call on it too. Otherwise CPU only, as the preset says.
cuda_args=(-DPOSATTN_ENABLE_CUDA=OFF)
cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)"
if command -v nvcc >/dev/null 2>&1 && [[ "$cap" =~ ^[0-9]+$ ]] && [ "$cap" -ge 80 ]; then
  [ "$cap" = 90 ] && cap=90a  # Hopper: the arch-specific target, as the default build uses
  echo "GPU found (sm_$cap): building the CUDA backend for it; the demo runs every call on it"
  cuda_args=(-DPOSATTN_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$cap")
else
  echo "no usable GPU (none, older than sm_80, or no nvcc): CPU backends only (REF, EMU)"
fi
stage "build (demo preset, Release)"
cmake --preset demo -S "$REPO" -B "$BUILD_ROOT/demo" "${cuda_args[@]}"
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
