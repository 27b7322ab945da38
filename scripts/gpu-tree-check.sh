#!/usr/bin/env bash
# One device call for a change to the GPU tree itself (GPU host, from an exported tree; BASE = an
# exported tree of the commit to compare with): while this tree builds and runs its checks
# (gpu-check.sh: gpu_check, the 99 KB tile choices, sanitizers, model checks), the other builds run
# beside it on the host's cores (the base addon, the reduced-arch builds of gpu-archs.sh); then the
# reduced-arch checks and the end-to-end A/B (gpu-ab.sh). Logs in $OUT, packed into $OUT/all.tgz.
#   env: BASE (required), SKIP_AB=1, SKIP_ARCHS=1, and those of the scripts it runs
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
: "${BASE:?BASE: the tree to compare with}"
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
inc() { echo "-DCMAKE_JS_INC=$1/node_modules/node-api-headers/include;$1/node_modules/node-addon-api"; }
pids=()
if [[ -z "${SKIP_AB:-}" ]]; then
  (cmake -G Ninja -S "$BASE" -B "$BASE/build-ab" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_CUDA_ARCHS=90a-real "$(inc "$BASE")" &&
   nice ninja -C "$BASE/build-ab" gpt_oss_node) > "$OUT/ab-build-base.log" 2>&1 & pids+=($!)
fi
if [[ -z "${SKIP_ARCHS:-}" ]]; then
  for a in 80 80-real; do
    (cmake -G Ninja -S . -B "build-arch-$a" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_GPU_TESTS=ON -DGPTOSS_CUDA_ARCHS="$a" "$(inc "$PWD")" &&
     nice ninja -C "build-arch-$a" gptoss_gpu_check gpt_oss_node) > "$OUT/arch-build-$a.log" 2>&1 & pids+=($!)
  done
fi
el "checks"
SKIP_BENCH=1 SKIP_20B=1 SANITIZER_TIMEOUT="${SANITIZER_TIMEOUT:-150}" OUT="$OUT" bash scripts/gpu-check.sh > "$OUT/check-all.log" 2>&1
sed -n "/=== summary/,\$p" "$OUT/check-all.log"
grep -E "FAIL" "$OUT/check.log" | head -10
el "waiting for the other builds"
wait "${pids[@]}" 2>/dev/null
if [[ -z "${SKIP_ARCHS:-}" ]]; then el "reduced arch lists"; OUT="$OUT" bash scripts/gpu-archs.sh 2>&1 | tail -8; fi
if [[ -z "${SKIP_AB:-}" ]]; then el "e2e A/B"; OUT="$OUT" BASE="$BASE" bash scripts/gpu-ab.sh 2>&1 | tail -12; fi
el "done"
(cd "$OUT" && tar czf all.tgz --exclude=all.tgz . 2>/dev/null)
