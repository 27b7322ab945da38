#!/usr/bin/env bash
# The one-token step's A/B knobs, in one device call on the binaries of `scripts/gpu-export.sh --binaries` (carry
# .gpu; nothing is built here). First run in the 31st session (bench/RESULTS.md): the one-pass top-k became the
# default; the cluster router waits for its racecheck fix to run; frags was within noise; the staged ring lost.
#   GPTOSS_CUDA_ROUTER_RANK=0      the router's top-k in k rounds again (the one pass is the default since the 31st)
#   GPTOSS_CUDA_ROUTER_CLUSTER=1   add+norm+router's blocks of a token as one cluster (router_norm_cluster_kernel)
#   GPTOSS_CUDA_MOE_ACT_FRAGS=1    gate_up writes down's B fragments (moe_decode_mma.cu, kActFrag)
# and the checks of GPTOSS_CUDA_MOE_DECODE=mma-mxf8 (sm_120a's block-scaled MMA, emulated here; 30th session).
# Steps (later ones are skipped when BUDGET would not cover them):
#   1. gptoss_gpu_check --gemm-splitk (ClusterLaunch on the split-K launch), --router (every router path with the rounds
#      and the one pass, exact ties, split and cluster), --only-moe (the act-fragment case bit for bit on every relaid
#      decode case, the 20b's widths included; the staged ring; mma-mxf8);
#   2. bench/e2e.mjs --synthetic 20b, decode 256 at context 512, ROUNDS rounds alternating: base, no-rank, cluster,
#      frags; then the medians;
#   3. gptoss_gpu_bench --decode (base, cluster): the router chain / alone rows and the relaid MoE rows;
#   4. compute-sanitizer memcheck and racecheck on gptoss_gpu_check --router (the cluster kernel's fix), then on
#      --only-moe --quick;
#   5. the SASS of the default one-token MoE kernels (moe_mma_gate_up / down_kernel<true, true, 0, false>);
#   6. scripts/ptx-blackwell.sh with the host's cuobjdump: the SASS of the sm_120a mma-mxf8 kernels.
# Landing rule, per knob: its checks pass (racecheck clean for the cluster) and its e2e median beats the base in every
# round; then its default flips (policy.h / policy.cpp) in a commit that says so.
#   env: OUT (./gpu-logs), BUDGET (480 s of command time), ROUNDS (2)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-$PWD/gpu-logs}"
D="$OUT/decode-knobs"
mkdir -p "$D"
source scripts/gpu-host-setup.sh
source scripts/ab-lib.sh  # ab_budget, ab_fits, ab_left, ab_elapsed, ab_report, ab_need_binaries
ab_need_binaries gpu-decode-knobs-ab
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$D/gpu.txt"
ab_budget "${BUDGET:-480}"
for a in --gemm-splitk --router --only-moe; do
  timeout 100 build-gpu/gptoss_gpu_check "$a" > "$D/check$a.log" 2>&1
  echo "gpu_check $a rc $? $(grep -E '^gpu_check:' "$D/check$a.log")"
  grep -E '^FAIL' "$D/check$a.log" | cut -c1-220 | head -10
done
grep -E 'router.*(rank|cluster)' "$D/check--router.log" | grep -c . | sed 's/^/router cases with the knobs: /'
grep -c 'act as fragments' "$D/check--only-moe.log" | sed 's/^/act-fragment cases: /'
grep -c 'staged ring' "$D/check--only-moe.log" | sed 's/^/staged-ring cases: /'
# variant name -> its environment
# (31st session: the one-pass top-k is the default now; the staged ring lost 5.5-6.8% and left the rounds)
declare -A ENVS=(
  [base]=""
  [no-rank]="GPTOSS_CUDA_ROUTER_RANK=0"
  [cluster]="GPTOSS_CUDA_ROUTER_CLUSTER=1"
  [frags]="GPTOSS_CUDA_MOE_ACT_FRAGS=1"
)
VARIANTS=(base no-rank cluster frags)
for r in $(seq 1 "${ROUNDS:-2}"); do
  for v in "${VARIANTS[@]}"; do
    ab_fits 40 || break 2
    # shellcheck disable=SC2086 # ENVS values are NAME=value words
    timeout 40 env ${ENVS[$v]} node bench/e2e.mjs --synthetic 20b --device cuda --prefill 0 --decode 256 --context 512 \
      --label "$v-r$r" --out "$D" > "$D/e2e-$v-r$r.log" 2>&1
    echo "$v r$r: $(grep -E '^  decode' "$D/e2e-$v-r$r.log" | tr -s ' ')"
  done
done
ab_round_medians "$D" || true
for v in base cluster; do  # base's run has the staged ring's rows (GPTOSS_CUDA_MOE_STAGED set per row)
  ab_fits 60 || break
  # shellcheck disable=SC2086
  timeout 60 env ${ENVS[$v]} build-gpu/gptoss_gpu_bench --decode > "$D/bench-$v.log" 2>&1
  echo "bench --decode ($v) rc $?"
  grep -iE 'chain|alone|relaid graph|staged|slice12' "$D/bench-$v.log" | grep -v ablation | head -12
done
for tool in memcheck racecheck; do  # --router runs the cluster kernel whatever the knob (its racecheck fix: 848cc59)
  ab_fits 60 || break
  timeout 60 compute-sanitizer --tool "$tool" --print-limit 10 build-gpu/gptoss_gpu_check --router > "$D/san-$tool.log" 2>&1
  echo "$tool rc $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$D/san-$tool.log" | tr '\n' ' ')"
done
for tool in memcheck racecheck; do
  ab_fits 120 || break
  timeout 120 compute-sanitizer --tool "$tool" --print-limit 10 build-gpu/gptoss_gpu_check --only-moe --quick > "$D/san-moe-$tool.log" 2>&1
  echo "$tool (--only-moe --quick) rc $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$D/san-moe-$tool.log" | tr '\n' ' ')"
done
# 5. the default one-token MoE kernels' SASS (the MMA loop's schedule), for the next change to that loop
CUOBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
if [[ -n "$CUOBJ" ]] && ab_fits 30; then
  timeout 30 "$CUOBJ" -sass build-gpu/gptoss_gpu_bench 2>/dev/null |
    awk '/Function : /{p = ($0 ~ /moe_mma_(gate_up|down)_kernelILb1ELb1ELi0ELb0E/)} p' > "$D/sass-moe-decode.txt"
  echo "SASS of the default decode MoE kernels: $(wc -l < "$D/sass-moe-decode.txt") lines, $(grep -c HMMA "$D/sass-moe-decode.txt") HMMA"
fi
# 6. Blackwell's block-scaled MMA in the decode MoE (mma-mxf8, sm_120a): the SASS of its kernels (cuobjdump is here);
# its emulated cases and self-test ran in step 1 (--only-moe: "decode mma-mxf8", "moe mxf8 self-test")
grep -E 'mxf8' "$D/check--only-moe.log" | cut -c1-200 | head -4
if ab_fits 30; then
  OUT="$D" timeout 60 bash scripts/ptx-blackwell.sh 2>&1 | tail -12
fi
echo "gpu-decode-knobs-ab: $(ab_elapsed) s"
