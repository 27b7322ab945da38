#!/usr/bin/env bash
# Probe (branch next/bf16act): is the grouped MoE's wgmma tile (prefill past 128 rows an expert) bound by its tensor-core
# work? GPTOSS_CUDA_MOE_ACT=bf16 multiplies the activations as their bf16 hi half alone, half the wgmma of the hi + lo
# split; the weight decode, copies and barriers stay. One device call, binaries prebuilt (scripts/gpu-export.sh, then
# gptoss_gpu_check, gptoss_gpu_bench and gpt_oss_node.node xz-packed into .gpu/bin):
#   1. gptoss_gpu_check --gemm-wgmma: the wgmma tile's cases, with the probe's against the CPU (within 5e-3, and past
#      2e-4 so that a run of the split path cannot pass for it);
#   2. gptoss_gpu_bench --moe-batch, GPTOSS_BENCH_MOE_NS=1024,2048,4096, paths gemm and gemm-bf16act (two rounds);
#   3. bench/e2e.mjs --synthetic 20b --prefill 2048,4096 --decode 0 --repeat 5, the probe off and on, twice.
# Reading it: the MoE op at 2048 tokens falls by ~40% if the tile is bound by wgmma issue, by < 10% if by the weight
# decode and its barriers (then the prefill redesign is a producer/consumer split, not fewer products).
#   4. while BUDGET lasts: serve-load on an H200, gpu-batch-check, racecheck on --moe-stream --quick.
#   env: OUT (./gpu-logs), BUDGET (300 s of command time; 540 leaves room for step 4)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-$PWD/gpu-logs}"
D="$OUT/act"
mkdir -p "$D"
BUDGET="${BUDGET:-300}"
source scripts/gpu-host-setup.sh
source scripts/ab-lib.sh  # ab_budget, ab_fits, ab_left, ab_elapsed
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$D/gpu.txt"
ab_budget "$BUDGET"
if ab_fits 120; then
  timeout 120 build-gpu/gptoss_gpu_check --gemm-wgmma > "$D/check.log" 2>&1
  echo "gpu_check --gemm-wgmma rc $? $(grep -E '^gpu_check:' "$D/check.log")"
  grep -E "^FAIL|ACT=bf16|act bf16" "$D/check.log" | cut -c1-200
fi
if ab_fits 90; then
  GPTOSS_BENCH_MOE_NS=1024,2048,4096 GPTOSS_BENCH_MOE_PATHS=gemm,gemm-bf16act timeout 90 build-gpu/gptoss_gpu_bench --moe-batch > "$D/bench.log" 2>&1
  echo "gpu_bench --moe-batch rc $?"
  grep -E "^ceiling|graph" "$D/bench.log" | cut -c1-200
fi
for round in 1 2; do
  for act in split bf16; do
    ab_fits 45 || break 2
    GPTOSS_CUDA_MOE_ACT=$act timeout 45 node bench/e2e.mjs --synthetic 20b --device cuda --prefill 2048,4096 --decode 0 --repeat 5 \
      --label "act-$act-$round" --out "$D/e2e" > "$D/e2e-$act-$round.log" 2>&1
    echo "e2e $act round $round rc $?: $(ab_prefill_line "$D/e2e-$act-$round.log")"
  done
done
# While BUDGET lasts, what earlier calls could not finish: the serving table on an H200 (issue 11's targets are an
# H200's; none came in sessions 16-20), the batch check under its twentieth-session rule, racecheck on the stream kernels.
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 && ab_fits 130; then
  ab_serve_table "$D"
fi
if ab_fits 70; then
  timeout 70 node scripts/gpu-batch-check.mjs > "$D/batch-check.log" 2>&1
  echo "gpu-batch-check rc $?"; grep -E "rel L2|past|FAIL|^gpu-batch" "$D/batch-check.log" | cut -c1-220
fi
if command -v compute-sanitizer > /dev/null && ab_fits 150; then
  timeout "$(ab_left)" compute-sanitizer --tool racecheck --print-limit 10 build-gpu/gptoss_gpu_check --moe-stream --quick \
    > "$D/racecheck.log" 2>&1
  echo "racecheck --moe-stream --quick rc $? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$D/racecheck.log" | tail -1)"
fi
echo "gpu-act-ab: $(ab_elapsed) s"
(cd "$OUT" && tar czf act.tgz act 2>/dev/null)
