#!/usr/bin/env bash
# The unranked draws split over the vocabulary (sample.cu's draw_max / draw_sum / draw_pick kernels, built on
# branch next/draws) against main's one-block kernels, in one device call. It landed them in the twenty-fourth session
# (bench/RESULTS.md); since then main has the split kernels, so "old" is whatever addon .gpu/old holds (any
# branch's draws against main's). Prepared locally:
#   git checkout main && bash scripts/gpu-export.sh --binaries && cp .gpu/bin/gpt_oss_node.node.xz /tmp/main-addon.xz
#   git checkout <branch> && bash scripts/gpu-export.sh --binaries && mkdir -p .gpu/old && cp /tmp/main-addon.xz .gpu/old/gpt_oss_node.node.xz
# then, carry [".gpu"]: BUDGET=200 OUT=$OUT bash scripts/gpu-draws-ab.sh
#   1. gptoss_gpu_check --sample (the branch's kernels): the draws against the CPU's, sample_rows == sample, codes;
#   2. gptoss_gpu_bench --sample: one row greedy / temperature 1 / top-p 0.9, 64 rows in one sample_rows call;
#   3. bench/e2e.mjs decode at context 512, 256 tokens, temperature 1 and 0, the branch's addon ("new") and main's
#      ("old"), two rounds while BUDGET lasts.
# Landing rule (bench/RESULTS.md, twenty-third session): the check passes, and new at temperature 1 is within 2% of
# new at temperature 0 and faster than old at temperature 1 in both rounds.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-$PWD/gpu-logs}"
D="$OUT/draws"
mkdir -p "$D"
source scripts/gpu-host-setup.sh
source scripts/ab-lib.sh
ab_budget "${BUDGET:-200}"
[[ -f .gpu/old/gpt_oss_node.node.xz && -x build-gpu/gptoss_gpu_check && -x build-gpu/gptoss_gpu_bench ]] || {
  echo "gpu-draws-ab: needs .gpu/bin (the branch's binaries) and .gpu/old/gpt_oss_node.node.xz (main's addon): see the header" >&2
  exit 1
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$D/gpu.txt"
xz -dc .gpu/old/gpt_oss_node.node.xz > /tmp/old.node
NEW=$GPT_OSS_NODE_BINARY
timeout 40 build-gpu/gptoss_gpu_check --sample > "$D/check-sample.log" 2>&1
echo "gpu_check --sample rc $? $(grep -E '^gpu_check:' "$D/check-sample.log")"
grep -E "^(PASS|FAIL)" "$D/check-sample.log" | cut -c1-200
timeout 30 build-gpu/gptoss_gpu_bench --sample > "$D/bench-sample.log" 2>&1
echo "gpu_bench --sample rc $?"
grep -E "sample|ceiling" "$D/bench-sample.log" | cut -c1-150
for round in 1 2; do
  for v in new-1 old-1 new-0 old-0; do
    ab_fits 30 || break 2
    bin=$NEW
    [[ $v == old-* ]] && bin=/tmp/old.node
    GPT_OSS_NODE_BINARY=$bin timeout 45 node bench/e2e.mjs --synthetic 20b --device cuda --prefill 0 --decode 256 \
      --context 512 --temperature "${v#*-}" --label "draws-$v-$round" --out "$D/e2e" > "$D/e2e-$v-$round.log" 2>&1
    echo "e2e decode $v round $round rc $?: $(grep -E '^  decode' "$D/e2e-$v-$round.log")"
  done
done
echo "gpu-draws-ab: $(ab_elapsed) s"
