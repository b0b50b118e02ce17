#!/usr/bin/env bash
# gpu-check.sh -- the one command for a GPU machine (DESIGN.md section 7), under 8 minutes on an
# H100/H200: build for the card, run the GPU test label (decode tests first), compute-sanitizer
# (memcheck + racecheck) on a small benchmark run, the prefill benchmark, the decode benchmark and
# the general posattn-bench report (+ PyTorch when importable); a short decode table is printed last.
# On sm_90 (H100/H200) the CUDA backend runs the wgmma kernel (kernels/prefill/wgmma.cuh) wherever it
# serves: the gpu tests and the posattn-bench prefill rows then check and time it; prefill_bench
# links the sm80 mma instances directly (the comparison).
# Estimated on an H200 (16 cores): build ~3.5 min, gpu tests ~1 min, sanitizer ~40 s, prefill bench
# ~30 s, decode bench ~70 s (--max-time 0.2), posattn-bench report ~50 s (--max-time 0.3).
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

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
  echo "gpu-check.sh: no NVIDIA GPU visible (nvidia-smi finds none): this script needs a GPU." >&2
  echo "On a CPU machine run scripts/test.sh (REF/EMU tests; GPU tests skip visibly there)." >&2
  exit 2
fi

stage "configure + build for $ARCH (tests, nvcc prefill instances hd128)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$CUARCH" \
  -DPOSATTN_CUDA_PREFILL_INSTANCES=ON -DPOSATTN_HEAD_DIMS="64;128;256" >"$BUILD.configure.log" 2>&1 \
  || { tail -30 "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" >"$BUILD.build.log" 2>&1 || { tail -40 "$BUILD.build.log"; exit 1; }
spills=$(grep -c "spill\|Local memory" "$BUILD.build.log" || true)
echo "ptxas spill / local-memory warnings in the build: $spills"

stage "ctest -L gpu -R decode (decode and cache append on the GPU vs REF)"
(cd "$BUILD" && ctest -L gpu -R decode --output-on-failure --timeout 240)
stage "ctest -L gpu (the rest)"
if (cd "$BUILD" && ctest -N -L gpu | grep -q "Total Tests: [1-9]"); then
  (cd "$BUILD" && ctest -L gpu -E decode --output-on-failure -j 4 --timeout 240)
else
  echo "no tests labelled gpu in this build: was it configured without CUDA? (see $BUILD.configure.log)"
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

PB="$BUILD/bench/posattn_bench/posattn-bench"
stage "decode benchmark (posattn-bench --op decode: GB/s vs the copy ceiling, combine share)"
# batch x context beyond 2M tokens is left out (host fill time); 128k runs at batch 1 and 8.
"$PB" --op decode --backend cuda --batch 1,8,64 --seq 1024,8192,32768 --max-time 0.2 \
  --json "$BUILD/decode.json" --csv "$BUILD/decode.csv" >"$BUILD.decode.log"
"$PB" --op decode --backend cuda --batch 1,8 --seq 131072 --max-time 0.2 \
  --json "$BUILD/decode_128k.json" >>"$BUILD.decode.log"

stage "posattn-sass: static predictions of the instances just built (docs/performance-model.md)"
predicted=()
if python3 "$ROOT/bench/sass/posattn_sass.py" --build "$BUILD" --tsv "$BUILD/predicted.tsv" \
     --json "$BUILD/predicted.json" >"$BUILD.sass.log" 2>&1; then
  predicted=(--predicted "$BUILD/predicted.tsv")  # the report shows them beside the measurements
else
  echo "posattn-sass failed (see $BUILD.sass.log): the report goes without predictions"
fi

stage "posattn-bench report (default GPU grid) + PyTorch when importable"
"$PB" --json "$BUILD/bench.json" --csv "$BUILD/bench.csv" --plot "$BUILD/bench.png" \
  --max-time 0.3 "${predicted[@]}" >"$BUILD.bench.log"
tail -n +1 "$BUILD.bench.log" | grep -E "^(contender|posattn-|cublas|cudnn)" || true
if python3 -c "import torch" >/dev/null 2>&1; then
  python3 "$ROOT/bench/compare_torch.py" --merge "$BUILD/bench.json" --max-time 0.3
else
  echo "PyTorch not importable: compare_torch.py skipped"
fi

stage "decode (table last; %BW = share of the copy bandwidth measured at the start of the run)"
grep -E "ceilings|^contender|^posattn-cuda" "$BUILD.decode.log"
stage "done"
