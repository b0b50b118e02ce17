# Shared helpers of scripts/demo.sh and scripts/test.sh (sourced, not run).
# Set-up for a fresh Debian 12 machine: installs only what is missing.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_ROOT="${POSATTN_BUILD_ROOT:-$REPO/build}"
JOBS="${POSATTN_JOBS:-2}"
# The CUDA toolkit lives here on these machines; a non-login shell may not have it on PATH.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

log() { printf '\n==> %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

# ---- timing: stage NAME starts a stage (ending the previous one); stage_failed marks the current
# stage as failed and lets the script go on, so that one run reports every failing stage;
# stages_report prints the table and returns 1 if any stage failed ----
STAGE_NAMES=()
STAGE_SECS=()
STAGE_STATUS=()
_stage_name=""
_stage_status=ok
_stage_t0=0
_now() { date +%s.%N; }
stage() {
  stage_end
  _stage_name="$1"
  _stage_status=ok
  _stage_t0="$(_now)"
  log "[$1]"
}
stage_failed() {
  _stage_status=FAILED
  printf '\n*** stage "%s" FAILED%s\n' "$_stage_name" "${1:+: $1}" >&2
}
stage_end() {
  if [ -n "$_stage_name" ]; then
    STAGE_NAMES+=("$_stage_name")
    STAGE_SECS+=("$(awk -v a="$_stage_t0" -v b="$(_now)" 'BEGIN { printf "%.1f", b - a }')")
    STAGE_STATUS+=("$_stage_status")
    printf '(%s: %s s, %s)\n' "$_stage_name" "${STAGE_SECS[${#STAGE_SECS[@]}-1]}" "$_stage_status"
    _stage_name=""
  fi
}
stages_report() {
  stage_end
  local total=0 i failed=0
  printf '\n%-38s %9s  %s\n' "stage" "seconds" "result"
  printf '%-38s %9s  %s\n' "--------------------------------------" "---------" "------"
  for i in "${!STAGE_NAMES[@]}"; do
    printf '%-38s %9s  %s\n' "${STAGE_NAMES[$i]}" "${STAGE_SECS[$i]}" "${STAGE_STATUS[$i]}"
    total="$(awk -v a="$total" -v b="${STAGE_SECS[$i]}" 'BEGIN { printf "%.1f", a + b }')"
    [ "${STAGE_STATUS[$i]}" = ok ] || failed=$((failed + 1))
  done
  printf '%-38s %9s  %s\n' "total" "$total" "$([ "$failed" -eq 0 ] && echo ok || echo "$failed FAILED")"
  [ "$failed" -eq 0 ]
}

# ---- dependencies ----------------------------------------------------------------------------
_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}
_apt_updated=0
apt_install() { # apt_install PKG...: installs the given Debian packages, non-interactively
  [ "$#" -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages ($*) and no apt-get to install them"
  log "installing Debian packages: $*"
  if [ "$_apt_updated" -eq 0 ]; then
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _apt_updated=1
  fi
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
_have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# ensure_build_deps [tests]: compilers, cmake >= 3.25, ninja; with "tests" also GoogleTest,
# pkg-config, binutils (nm) and Python 3 with numpy + ml_dtypes and nvidia-cutlass (CuTe headers).
ensure_build_deps() {
  local want_tests="${1:-}" missing=() cmd pkg
  for pair in cmake:cmake ninja:ninja-build gcc:gcc g++:g++; do
    cmd="${pair%%:*}"; pkg="${pair#*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "$want_tests" = tests ]; then
    [ -f /usr/include/gtest/gtest.h ] || _have_pkg libgtest-dev || missing+=(libgtest-dev)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v nm >/dev/null 2>&1 || missing+=(binutils)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    if command -v python3 >/dev/null 2>&1 && ! python3 -m pip --version >/dev/null 2>&1 &&
       ! python3 -c 'import numpy, ml_dtypes' >/dev/null 2>&1; then
      missing+=(python3-pip)
    fi
  fi
  apt_install "${missing[@]}"
  local v
  v="$(cmake --version | awk 'NR==1 { print $3 }')"
  printf '%s\n3.25\n' "$v" | sort -V -C -r || die "cmake $v is too old: posattn needs >= 3.25"
  if [ "$want_tests" = tests ] && ! python3 -c 'import numpy, ml_dtypes' >/dev/null 2>&1; then
    log "installing Python packages: numpy ml_dtypes"
    python3 -m pip install -q numpy ml_dtypes ||
      python3 -m pip install -q --break-system-packages numpy ml_dtypes
    python3 -c 'import numpy, ml_dtypes' || die "numpy / ml_dtypes still not importable"
  fi
  # CUTLASS's CuTe headers, test-only: the emulator's tensor-core layouts are checked against them
  # (tests/emu/test_sm90_cute.cpp; it reports itself skipped without them)
  if [ "$want_tests" = tests ] && ! python3 -c 'import cutlass_library' >/dev/null 2>&1; then
    log "installing Python packages: nvidia-cutlass (CuTe headers for the layout cross-check)"
    python3 -m pip install -q nvidia-cutlass ||
      python3 -m pip install -q --break-system-packages nvidia-cutlass
    python3 -c 'import cutlass_library' || die "nvidia-cutlass still not importable"
  fi
  printf 'tools: %s; %s; ninja %s' "$(cmake --version | head -1)" \
    "$(g++ --version | head -1)" "$(ninja --version)"
  if command -v nvcc >/dev/null 2>&1; then
    printf '; nvcc %s' "$(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  else
    printf '; no nvcc'
  fi
  printf '\n'
}

# ensure_sass_deps: cuobjdump for posattn-sass (bench/sass), from the PyPI packages
# nvidia-cuda-cuobjdump and nvidia-cuda-nvdisasm where the toolkit lacks it (installed only when
# missing). cuobjdump 13.5 (PyPI, 2026-12) disassembles through nvdisasm, which it looks for next
# to itself: without it `cuobjdump -sass` fails ("Could not find executable file 'nvdisasm'").
ensure_sass_deps() {
  if command -v cuobjdump >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/cuobjdump ]; then
    return 0
  fi
  local pkg missing=()
  for pkg in nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm; do
    python3 -m pip show -q "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing Python packages: ${missing[*]}"
  python3 -m pip install -q "${missing[@]}" ||
    python3 -m pip install -q --break-system-packages "${missing[@]}"
}

# ensure_fuzz_toolchain: succeeds when clang-14 can build a libFuzzer target with ASan + UBSan
# (installs libclang-rt-14-dev, the sanitizer and fuzzer runtimes, when clang-14 is there without
# them); fails, without installing a compiler, when there is no clang-14.
ensure_fuzz_toolchain() {
  command -v clang-14 >/dev/null 2>&1 && command -v clang++-14 >/dev/null 2>&1 || return 1
  local probe
  probe="$(mktemp -d)"
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }\n' \
    > "$probe/t.cpp"
  _fuzz_probe() { clang++-14 -fsanitize=fuzzer,address,undefined "$probe/t.cpp" -o "$probe/t" 2>/dev/null; }
  _fuzz_probe || { apt_install libclang-rt-14-dev && _fuzz_probe; }
  local rc=$?
  rm -rf "$probe"
  return $rc
}

# configure_build PRESET [cmake -D options...]: configures $BUILD_ROOT/PRESET from the preset and
# builds it. Returns the failing status itself (usable where set -e does not apply).
configure_build() {
  local preset="$1"; shift
  cmake --preset "$preset" -S "$REPO" -B "$BUILD_ROOT/$preset" "$@" &&
    cmake --build "$BUILD_ROOT/$preset" -j "$JOBS"
}
