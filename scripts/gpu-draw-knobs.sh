#!/usr/bin/env bash
# What the 31st session built and could not run (refused device starts), in one device call on the binaries of
# `scripts/gpu-export.sh --binaries` (carry .gpu; nothing is built here):
#   1. the cluster router's racecheck fix (848cc59): compute-sanitizer racecheck and memcheck on gptoss_gpu_check
#      --router (which runs router_norm_cluster_kernel whatever the knob);
#   2. the device logprobs kernel (native/cuda/logprobs.cu): gptoss_gpu_check --sample (check_logprob_top against
#      the host's row_top on fresh random rows), memcheck on it, gptoss_gpu_bench --sample (its rows);
#   3. scripts/gpu-draw-extras-check.mjs with the host path (the default) and with GPTOSS_CUDA_LOGPROBS=device:
#      its assertions, and the price of logprobs 0/5/20 a token on generate();
#   4. bench/e2e.mjs --synthetic 20b, decode 256 at context 512, ROUNDS rounds alternating base and
#      GPTOSS_CUDA_ROUTER_CLUSTER=1, then the medians.
# Landing rules: the cluster router goes on by default when racecheck is clean and it beats base in every round;
# the device logprobs when check_logprob_top passes, memcheck is clean, the draw-extras check passes with it and
# its price a token is lower than the host path's.
#   env: OUT (./gpu-logs), BUDGET (500 s of command time), ROUNDS (2)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-$PWD/gpu-logs}"
D="$OUT/draw-knobs"
mkdir -p "$D"
source scripts/gpu-host-setup.sh
source scripts/ab-lib.sh
ab_need_binaries gpu-draw-knobs
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$D/gpu.txt"
ab_budget "${BUDGET:-500}"
for tool in racecheck memcheck; do
  ab_fits 60 || break
  timeout 60 compute-sanitizer --tool "$tool" --print-limit 10 build-gpu/gptoss_gpu_check --router > "$D/san-router-$tool.log" 2>&1
  echo "$tool --router rc $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^gpu_check:' "$D/san-router-$tool.log" | tr '\n' ' ')"
  grep -E 'Race reported|Invalid' "$D/san-router-$tool.log" | sort | uniq -c | head -5
done
timeout 60 build-gpu/gptoss_gpu_check --sample > "$D/check-sample.log" 2>&1
echo "gpu_check --sample rc $? $(grep -E '^gpu_check:' "$D/check-sample.log")"
grep -E '^FAIL' "$D/check-sample.log" | cut -c1-220 | head -10
grep -E 'logprob' "$D/check-sample.log" | cut -c1-200 | head -12
if ab_fits 90; then
  timeout 90 compute-sanitizer --tool memcheck --print-limit 10 build-gpu/gptoss_gpu_check --sample > "$D/san-sample-memcheck.log" 2>&1
  echo "memcheck --sample rc $?: $(grep -E 'ERROR SUMMARY' "$D/san-sample-memcheck.log")"
fi
if ab_fits 60; then
  timeout 60 build-gpu/gptoss_gpu_bench --sample > "$D/bench-sample.log" 2>&1
  echo "gpu_bench --sample rc $?"
  grep -E 'logprob|ceiling|copy' "$D/bench-sample.log" | head -16
fi
for lp in host device; do
  ab_fits 90 || break
  timeout 90 env GPTOSS_CUDA_LOGPROBS=$lp node scripts/gpu-draw-extras-check.mjs > "$D/draw-extras-$lp.log" 2>&1
  echo "draw extras ($lp logprobs) rc $?"
  grep -vE '^\s*$' "$D/draw-extras-$lp.log" | tail -14
done
declare -A ENVS=([base]="" [cluster]="GPTOSS_CUDA_ROUTER_CLUSTER=1")
for r in $(seq 1 "${ROUNDS:-2}"); do
  for v in base cluster; do
    ab_fits 40 || break 2
    # shellcheck disable=SC2086
    timeout 40 env ${ENVS[$v]} node bench/e2e.mjs --synthetic 20b --device cuda --prefill 0 --decode 256 --context 512 \
      --label "$v-r$r" --out "$D" > "$D/e2e-$v-r$r.log" 2>&1
    echo "$v r$r: $(grep -E '^  decode' "$D/e2e-$v-r$r.log" | tr -s ' ')"
  done
done
ab_round_medians "$D" || true
echo "gpu-draw-knobs: $(ab_elapsed) s"
