#!/usr/bin/env bash
# Prefill on the GPU host in one call: builds the addon (sm_90a), runs bench/e2e.mjs prefill 512 and
# 2048 tokens on synthetic weights of each MODELS preset (default "20b"), then Nsight Compute over a
# LAYERS-layer cut (default 2) prefilling 2048 tokens: every kernel's duration summed by name, and
# the full section set (--set full, text) for the first NCU_DETAILS launches of the GEMM tile.
# Logs under $OUT (packed as $OUT/prefill.tgz).
#   carry: .gpu (scripts/gpu-export.sh); run from the repository root after `source scripts/gpu-host-setup.sh`
#   env: MODELS ("20b"), LAYERS (2), NCU_DETAILS (6; 0 skips), NCU_KERNEL (regex, gemm_tile_kernel),
#        NCU_SKIP (12: the warm-up prefill's launches of the 2-layer cut; then layer 0: q, k, v, o, gate_up, down)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-addon.sh prefill

for m in ${MODELS:-20b}; do
  node bench/e2e.mjs --synthetic "$m" --device cuda --prefill 512,2048 --decode 8 --context 2048 --label "prefill-$m" \
    --out "$OUT" 2>&1 | tee -a "$OUT/prefill-e2e.log" | grep -E "prefill|generated"
done
if command -v ncu > /dev/null; then
  SRC=(--synthetic 20b --layers "${LAYERS:-2}" --device cuda --prefill 2048 --decode 1 --context 2048 --label ncu --out /tmp)
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw node bench/e2e.mjs "${SRC[@]}" \
    > "$OUT/ncu-prefill.csv" 2> "$OUT/ncu-prefill.err"
  python3 scripts/ncu-step.py --by-name "$OUT/ncu-prefill.csv" > "$OUT/ncu-prefill.txt" && head -16 "$OUT/ncu-prefill.txt"
  if [[ "${NCU_DETAILS:-6}" != 0 ]]; then
    timeout 300 ncu --set full -k "regex:${NCU_KERNEL:-gemm_tile_kernel}" --launch-skip "${NCU_SKIP:-12}" --launch-count "${NCU_DETAILS:-6}" \
      node bench/e2e.mjs "${SRC[@]}" > "$OUT/ncu-details.txt" 2>&1
    echo "ncu details: rc $?, $(wc -l < "$OUT/ncu-details.txt") lines"
  fi
fi
(cd "$OUT" && tar czf prefill.tgz prefill-* ncu-prefill.txt ncu-details.txt *.json 2>/dev/null)
