#!/usr/bin/env bash
# End-to-end benchmark on the GPU host: builds the addon (sm_90a), then runs bench/e2e.mjs for each
# model of MODELS (default "checkpoint-20b synthetic-120b"):
#   checkpoint-20b   writes a random checkpoint with the exact gpt-oss-20b shape (13.76 GB), drops the
#                    page cache, and runs on it through the real loader (load time measured);
#   synthetic-20b, synthetic-120b
#                    random weights generated in memory at the preset's exact shape (the 120b
#                    checkpoint, ~65 GB, does not fit the host's disk);
#   synthetic-20b-q8 the same with denseWeights 'q8' (Q8_0 attention and LM head), context 512 only:
#                    MODELS="synthetic-20b synthetic-20b-q8" compares q8 with bf16 decode and prefill.
# Each model: prefill 512 and 2048 with decode at context 512, decode at context 4096, and a run at
# context 8192 (the 8k-token KV cache memory figure). Peak device memory is sampled with nvidia-smi
# every 100 ms for each run on its own. Logs and JSON under $OUT.
#   carry: .gpu (scripts/gpu-export.sh); run from the repository root after `source scripts/gpu-host-setup.sh`
#   env: GPTOSS_CUDA_ARCHS (default 90a-real), LAYERS (checkpoint-20b only), MODELS, DECODE (128)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-addon.sh e2e
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
DECODE="${DECODE:-128}"

# run <label> <model args...> -- <e2e args...>: one bench run with its own peak-memory sampler
run() {
  local label="$1"; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUT/mem-$label.log" 2>/dev/null &
  local smi=$!
  node bench/e2e.mjs "$@" --device cuda --label "$label" --out "$OUT" 2>&1 | tee -a "$OUT/e2e.log" |
    grep -E "generat|load|prefill|decode at"
  kill $smi 2>/dev/null; wait $smi 2>/dev/null
  echo "  peak device memory ($label): $(sort -n "$OUT/mem-$label.log" | tail -1) MiB" | tee -a "$OUT/e2e.log"
}

for m in ${MODELS:-checkpoint-20b synthetic-120b}; do
  echo "== $m"
  case "$m" in
    checkpoint-20b)
      CK=/tmp/gpt-oss-20b-random
      t0=$(date +%s)
      [[ -f "$CK/config.json" ]] || node scripts/make-checkpoint.mjs "$CK" --preset 20b ${LAYERS:+--layers $LAYERS} --quiet > "$OUT/e2e-checkpoint.log" 2>&1
      echo "checkpoint: $(( $(date +%s) - t0 )) s"
      sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true
      src=("$CK") ;;
    synthetic-*-q8)  # denseWeights 'q8' (issue 15): decode and prefill at context 512 only
      run "$m-ctx512" --synthetic "$(echo "${m#synthetic-}" | sed 's/-q8$//')" --dense-weights q8 --prefill 512,2048 --decode "$DECODE" --context 512
      continue ;;
    synthetic-*) src=(--synthetic "${m#synthetic-}") ;;
    *) echo "unknown model $m"; continue ;;
  esac
  run "$m-ctx512" "${src[@]}" --prefill 512,2048 --decode "$DECODE" --context 512
  run "$m-ctx4096" "${src[@]}" --prefill "" --decode "$DECODE" --context 4096
  run "$m-ctx8192" "${src[@]}" --prefill "" --decode 32 --context 8192
done
# One table (and bench/results-style JSON) over the runs above and any kernel bench log in $OUT.
cp COMMIT "$OUT/COMMIT" 2>/dev/null || git rev-parse HEAD > "$OUT/COMMIT" 2>/dev/null || true
node bench/summary.mjs "$OUT"
