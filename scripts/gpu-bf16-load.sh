#!/usr/bin/env bash
# Issue 15's load-time target on the GPU host: a fine-tuned gpt-oss-20b (bf16 experts in transformers'
# layout, 40.6 GB) loaded with the default experts: 'mxfp4' (quantized at load) in <= 15 s. One step:
#   1. the random 20b checkpoint (gpu-e2e.sh's checkpoint-20b, /tmp/gpt-oss-20b-random; written here if absent),
#   2. scripts/bf16-checkpoint.mjs: its experts dequantized to bf16 [E, in, out], a shard a layer (native ops;
#      disk-bound), timed,
#   3. bench/load-bf16.mjs on the CPU device: twice with the file in the page cache (just written; 128 GiB of
#      RAM), then once cold (its pages dropped: sync + dd iflag=nocache, nothing else's cache) after a plain
#      read of the files for the disk's speed; the split is read wait / quantize / page-in / rest,
#   4. the same load onto CUDA (quantized on the host, then uploaded) with the file cached, and a short
#      e2e run on it (the model works: decode tokens/s),
#   5. removes the bf16 checkpoint (the source stays for gpu-e2e.sh).
# Builds the addon (gpu-addon.sh: incremental when gpu-check.sh / gpu-e2e.sh built it) and runs from
# the repository root with dist/ and node_modules/ in place (scripts/gpu-host-setup.sh), nothing else.
# Disk: 40.6 GB free beside the 13.8 GB source (the host has 64 GiB); skipped with a message otherwise.
# Predictions: bench/RESULTS.md "bf16 20b load on the H200 host".
#   OUT=$OUT bash scripts/gpu-bf16-load.sh      (env: SRC, DST, BUILD_DIR=build-gpu, KEEP_BF16=1, MIN_FREE_GB=42;
#   a dry run elsewhere: GPT_OSS_NODE_BINARY=<built addon> SRC=test/fixtures/tiny-a MIN_FREE_GB=0 ...)
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${GPT_OSS_NODE_BINARY:-}" && -f "${GPT_OSS_NODE_BINARY:-}" ]]; then OUT="${OUT:-$PWD/gpu-logs}"; mkdir -p "$OUT"
else source scripts/gpu-addon.sh bf16-load; fi
SRC="${SRC:-/tmp/gpt-oss-20b-random}"
DST="${DST:-/tmp/gpt-oss-20b-bf16}"
LOG="$OUT/bf16-load.log"
[[ -f "$GPT_OSS_NODE_BINARY" && -f dist/index.js ]] || { echo "bf16 load: no addon at $GPT_OSS_NODE_BINARY or no dist/: skipped" | tee -a "$LOG"; exit 0; }
t0=$SECONDS
if [[ ! -f "$SRC/config.json" ]]; then
  timeout 300 node scripts/make-checkpoint.mjs "$SRC" --preset 20b --quiet >> "$LOG" 2>&1
  echo "bf16 load: source checkpoint written rc $? in $((SECONDS - t0)) s" | tee -a "$LOG"
fi
free_gb=$(df -BG --output=avail "$(dirname "$DST")" | tail -1 | tr -dc 0-9)
if (( free_gb < ${MIN_FREE_GB:-42} )); then
  echo "bf16 load: ${free_gb} GB free under $(dirname "$DST"), the 20b bf16 checkpoint needs 40.6 GB: skipped" | tee -a "$LOG"
  exit 0
fi
t1=$SECONDS
timeout 400 node scripts/bf16-checkpoint.mjs "$SRC" "$DST" --quiet 2>&1 | tee -a "$LOG"
echo "bf16 load: converted rc ${PIPESTATUS[0]} in $((SECONDS - t1)) s, $(du -sh "$DST" | cut -f1)" | tee -a "$LOG"
nproc | sed 's/^/cores: /' | tee -a "$LOG"; free -g | head -2 | tee -a "$LOG"
timeout 240 node bench/load-bf16.mjs "$DST" --reps 2 --label bf16-20b-cpu-cached --out "$OUT" 2>&1 | tee -a "$LOG"
timeout 400 node bench/load-bf16.mjs "$DST" --cold --read-speed --label bf16-20b-cpu-cold --out "$OUT" 2>&1 | tee -a "$LOG"
# the cold run left the file in the page cache again (it was read twice): CUDA with it cached
timeout 240 node bench/load-bf16.mjs "$DST" --device cuda --label bf16-20b-cuda-cached --out "$OUT" 2>&1 | tee -a "$LOG"
timeout 240 node bench/e2e.mjs "$DST" --device cuda --prefill 128 --decode 64 --context 512 --label bf16-20b-cuda-e2e --out "$OUT" 2>&1 |
  grep -E "load|decode|prefill|Error" | tee -a "$LOG"
[[ -n "${KEEP_BF16:-}" ]] || rm -rf "$DST"
echo "bf16 load: done in $((SECONDS - t0)) s" | tee -a "$LOG"
