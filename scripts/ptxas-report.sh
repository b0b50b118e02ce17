#!/usr/bin/env bash
# Summarises ptxas -v output in a build log: per kernel and architecture, registers, stack frame
# and spill bytes; lists every kernel that spills or uses local memory.
# Usage: scripts/ptxas-report.sh BUILD_LOG. Exit status 1 when a kernel spills and
# POSATTN_FAIL_ON_SPILLS=1, else 0.
set -euo pipefail
log="${1:?usage: ptxas-report.sh BUILD_LOG}"
demangle() { if command -v c++filt >/dev/null 2>&1; then c++filt; else cat; fi; }

awk '
  /Compiling entry function/ { match($0, /for .sm_[0-9a-z]+/); arch = substr($0, RSTART + 5, RLENGTH - 5) }
  /Function properties for/ { fn = $NF; getline; stack = $1; st = $5; ld = $9
                              getline; regs = ($0 ~ /Used [0-9]+ registers/) ? $0 : ""
                              sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
                              printf "%s\t%s\t%s\t%s\t%s\t%s\n", arch, regs, stack, st, ld, fn }
' "$log" | sort -u > "$log.kernels"

n="$(wc -l < "$log.kernels")"
if [ "$n" -eq 0 ]; then
  echo "ptxas report: no kernel was compiled (kernels/sources.cmake lists no CUDA sources yet?)"
  exit 0
fi
spills="$(awk -F'\t' '$4 > 0 || $5 > 0' "$log.kernels" | wc -l)"
lmem="$(awk -F'\t' '$3 > 0' "$log.kernels" | wc -l)"
printf 'ptxas report: %s kernel compilations (%s); %s spill registers, %s use a stack frame\n' \
  "$n" "$(cut -f1 "$log.kernels" | sort | uniq -c | awk '{ printf "%s%s: %s", s, $2, $1; s = ", " }')" \
  "$spills" "$lmem"
printf '%-7s %5s %7s %7s %7s  %s\n' arch regs stack spill_st spill_ld kernel
awk -F'\t' '$3 > 0 || $4 > 0 || $5 > 0' "$log.kernels" | while IFS=$'\t' read -r a r s st ld fn; do
  printf '%-7s %5s %7s %7s %7s  %s\n' "$a" "$r" "$s" "$st" "$ld" "$(echo "$fn" | demangle | cut -c1-110)"
done
warnings="$(grep -c 'ptxas warning' "$log" || true)"
echo "ptxas warnings in the log: $warnings"
if [ "$spills" -gt 0 ] && [ "${POSATTN_FAIL_ON_SPILLS:-0}" = 1 ]; then
  echo "POSATTN_FAIL_ON_SPILLS=1 and $spills kernel(s) spill" >&2
  exit 1
fi
