#!/usr/bin/env bash
# Where a decode step's time goes, on the GPU host: builds the addon (sm_90a), then on synthetic
# weights of the gpt-oss-20b shape cut to LAYERS layers (default 4; generated in memory, no
# checkpoint) runs bench/e2e.mjs with graphs on and off, and Nsight Compute over a few decode steps
# with every node of the captured graph profiled on its own (`--graph-profiling node`): one duration
# per kernel (ncu flushes the caches before each, so small kernels read cold). The sum of those
# against the measured step time is the part of a step that is launch gaps and host work.
# Logs, the e2e JSON and ncu CSVs go to $OUT (and $OUT/profile.tgz).
#   carry: .gpu (scripts/gpu-export.sh); run from the repository root after `source scripts/gpu-host-setup.sh`
#   env: LAYERS (4), CTXS ("512 4096"), SKIP_NCU=1, PREFILL=N (ncu over an N-token prefill, by kernel name),
#        NCU_WARM=1 (no cache flush between kernels: the durations a graph replay sees),
#        MOE_DETAIL=1 (ncu's full set on the decode MoE kernels, and their SASS from cuobjdump)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-addon.sh profile

LAYERS="${LAYERS:-4}"
SRC=(--synthetic 20b --layers "$LAYERS")

for ctx in ${CTXS:-512 4096}; do
  node bench/e2e.mjs "${SRC[@]}" --device cuda --prefill "" --decode 128 --context "$ctx" --label "${LAYERS}l-ctx$ctx" --out "$OUT" 2>&1 | tail -4 | tee -a "$OUT/profile-e2e.log"
  GPTOSS_CUDA_GRAPHS=0 node bench/e2e.mjs "${SRC[@]}" --device cuda --prefill "" --decode 64 --context "$ctx" --label "${LAYERS}l-ctx$ctx-nographs" --out "$OUT" 2>&1 | tail -2 | tee -a "$OUT/profile-e2e.log"
done

if [[ -z "${SKIP_NCU:-}" ]] && command -v ncu > /dev/null; then
  for ctx in ${CTXS:-512 4096}; do
    # 3 decode steps after the context prefill; every kernel of the run, one duration each.
    timeout 240 ncu --clock-control none ${NCU_WARM:+--cache-control none} --graph-profiling node --metrics gpu__time_duration.sum --csv --page raw \
      node bench/e2e.mjs "${SRC[@]}" --device cuda --prefill "" --decode 3 --context "$ctx" --label ncu --out /tmp \
      > "$OUT/ncu-decode-ctx$ctx.csv" 2> "$OUT/ncu-decode-ctx$ctx.err"
    echo "ncu ctx $ctx: rc $?, $(wc -l < "$OUT/ncu-decode-ctx$ctx.csv") lines"
  done
fi
if [[ -n "${MOE_DETAIL:-}" ]] && command -v ncu > /dev/null; then
  timeout 240 ncu --clock-control none --cache-control none --graph-profiling node -k regex:"moe_(mma|fp8)" --launch-skip 8 \
    --launch-count 2 --set full node bench/e2e.mjs "${SRC[@]}" --device cuda --prefill "" --decode 3 --context 512 \
    --label ncu --out /tmp > "$OUT/ncu-moe-detail.txt" 2>&1
  echo "ncu moe detail: rc $?"
  command -v cuobjdump > /dev/null && cuobjdump -sass "$GPT_OSS_NODE_BINARY" 2>&1 |
    awk '/Function : /{p = /moe_(mma|fp8)/} p' > "$OUT/ncu-moe-sass.txt"
fi
# PREFILL=N: the same cut prefilling N tokens, every kernel by name (where prefill time goes).
if [[ -n "${PREFILL:-}" ]] && command -v ncu > /dev/null; then
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw \
    node bench/e2e.mjs "${SRC[@]}" --device cuda --prefill "$PREFILL" --decode 1 --context "$PREFILL" --label ncu --out /tmp \
    > "$OUT/ncu-prefill.csv" 2> "$OUT/ncu-prefill.err"
  echo "ncu prefill $PREFILL: rc $?"
  python3 scripts/ncu-step.py --by-name "$OUT/ncu-prefill.csv" > "$OUT/ncu-prefill.txt" && head -25 "$OUT/ncu-prefill.txt"
fi
command -v python3 > /dev/null && ls "$OUT"/ncu-decode-ctx*.csv > /dev/null 2>&1 &&
  python3 scripts/ncu-step.py "$OUT"/ncu-decode-ctx*.csv > "$OUT/ncu-step.txt" && grep total "$OUT/ncu-step.txt"
(cd "$OUT" && tar czf profile.tgz ncu-*.txt ncu-*.csv *.json profile-*.log 2>/dev/null)
