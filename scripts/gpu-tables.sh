#!/usr/bin/env bash
# Issue 12's end-to-end table and issue 11's serving table in one device call, on the prebuilt binaries of
# `scripts/gpu-export.sh --binaries` (carry [".gpu"]; no build on the device):
#   20b synthetic: decode at context 512 (256 tokens) with prefill 2,048 (median of 3), decode at context 8192;
#   120b synthetic: decode at context 512 with prefill 2,048;
#   then ab_serve_table (scripts/ab-lib.sh: 1 / 64 / 128 streams, TTFT of 2,000 tokens, a 4,000-token prompt's delay).
# Steps that would not fit BUDGET seconds (default 540) are skipped and say so. Logs and JSON under $OUT/tables.
#   on the device: bash scripts/gpu-tables.sh   (env: BUDGET, OUT)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-host-setup.sh
source scripts/ab-lib.sh
if [[ -z "${GPT_OSS_NODE_BINARY:-}" ]]; then
  echo "gpu-tables: no prebuilt addon in build-gpu (run scripts/gpu-export.sh --binaries and carry .gpu)" >&2
  exit 2
fi
D="${OUT:-/tmp}/tables"
mkdir -p "$D"
echo "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), commit $(cat .gpu/COMMIT 2>/dev/null), $(date -u +%H:%M) UTC"
ab_budget "${BUDGET:-540}"
# run <label> <timeout> <e2e args...>: one bench/e2e.mjs run; its decode / prefill lines
run() {
  local label=$1 limit=$2
  shift 2
  ab_fits "$limit" || return 0
  timeout "$limit" node bench/e2e.mjs --device cuda --label "$label" --out "$D" "$@" > "$D/$label.log" 2>&1
  echo "$label (rc $?): $(grep -E '^  (decode|prefill)' "$D/$label.log" | sed -E 's/, median of [^)]*//' | tr -s ' ' | tr '\n' ';')"
}
run 20b-ctx512 90 --synthetic 20b --prefill 2048 --decode 256 --context 512 --repeat 3
run 20b-ctx8192 60 --synthetic 20b --prefill 0 --decode 128 --context 8192
run 120b-ctx512 200 --synthetic 120b --prefill 2048 --decode 128 --context 512
ab_fits 130 && ab_serve_table "$D"
echo "gpu-tables: $(ab_elapsed) s"
