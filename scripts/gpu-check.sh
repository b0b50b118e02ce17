#!/usr/bin/env bash
# gpu-check.sh -- the one command for a GPU machine (DESIGN.md section 7), under 8 minutes on an
# H100/H200: build for the card, run the GPU test label, compute-sanitizer (memcheck + racecheck)
# on a small benchmark run, then the prefill benchmark; its table is printed last.
#   scripts/gpu-check.sh [build-dir]       (default build-gpu; ARCH=sm_90a by default, e.g. ARCH=sm_80)
# Exit status: non-zero when the build, a test or a sanitizer run fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-gpu}
ARCH=${ARCH:-sm_90a}
JOBS=${JOBS:-$(nproc)}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CUARCH=${ARCH#sm_}
t0=$(date +%s)
stage() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }

stage "configure + build for $ARCH (tests, nvcc prefill instances hd128)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$CUARCH" \
  -DPOSATTN_CUDA_PREFILL_INSTANCES=ON -DPOSATTN_HEAD_DIMS="64;128;256" >"$BUILD.configure.log" 2>&1 \
  || { tail -30 "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" >"$BUILD.build.log" 2>&1 || { tail -40 "$BUILD.build.log"; exit 1; }
spills=$(grep -c "spill\|Local memory" "$BUILD.build.log" || true)
echo "ptxas spill / local-memory warnings in the build: $spills"

stage "ctest -L gpu"
if (cd "$BUILD" && ctest -N -L gpu | grep -q "Total Tests: [1-9]"); then
  (cd "$BUILD" && ctest -L gpu --output-on-failure -j 4 --timeout 240)
else
  echo "no tests labelled gpu in this build (the CUDA backend is not there yet)"
fi

stage "prefill benchmark binary (nvcc -arch=$ARCH)"
BENCH="$BUILD/prefill_bench"
INST=("$ROOT"/kernels/prefill/instances/mma_hd128_bf16_*.cu)
DEFS=()
for f in "${INST[@]}"; do n=$(basename "$f" .cu); DEFS+=("-DPA_MMA_${n^^}"); done
"$NVCC" -std=c++17 -O3 -arch="$ARCH" -lineinfo -Xptxas -warn-spills,-warn-lmem-usage \
  -I"$ROOT/kernels" -I"$ROOT/include" -I"$ROOT/host" "${DEFS[@]}" \
  "$ROOT/bench/prefill/prefill_bench.cu" "${INST[@]}" -x cu "$ROOT/kernels/prefill/instances/mma_table.cpp" \
  -o "$BENCH"

if command -v compute-sanitizer >/dev/null 2>&1; then
  for tool in memcheck racecheck; do
    stage "compute-sanitizer --tool $tool (benchmark --quick)"
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$BENCH" --quick >"$BUILD.$tool.log" 2>&1 \
      || { tail -30 "$BUILD.$tool.log"; exit 1; }
    tail -1 "$BUILD.$tool.log"
  done
else
  echo "compute-sanitizer not found: sanitizer stage skipped"
fi

stage "prefill benchmark (hd128 bf16; table last)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%F)"
"$BENCH"
stage "done"
