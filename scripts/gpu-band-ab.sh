#!/usr/bin/env bash
# The streaming MoE up to 128 rows an expert on Hopper (branch next/band: shapes.h kMoeStreamAutoMaxPerExpert
# 16 -> 128, kMoeStreamMaxPerExpert 32 -> 128) against main's policy (the GEMM tile past 16 rows an expert),
# in one device call on the GPU host. Prebuilt binaries beside scripts/gpu-export.sh's export, in .gpu/bin
# (scripts/gpu-host-setup.sh unpacks them into build-gpu/):
#   gptoss_gpu_check.xz            this branch's check
#   gpt_oss_node_base.node.xz      main's addon (the baseline)
#   gpt_oss_node_band.node.xz      this branch's addon
# Steps, in the order the landing rule needs them, each under its own timeout; BUDGET (seconds of command time,
# default 420) skips a later step when the time left would not cover its timeout:
#   1. gptoss_gpu_check, the whole check (the PDL build's first whole run too; the new cases at 48-160 rows an
#      expert, wide and narrow, checkpoint and decode layout), against the CPU on fresh random data;
#   2. scripts/gpu-batch-check.mjs and --large on the branch's addon (its prefill chunks now take the stream path);
#   3. bench/e2e.mjs --synthetic 20b --prefill 512,1024,2048 --decode 0 --repeat 5: base, band, base, band;
#   4. bench/batch.mjs, the 24-layer step at 64 / 128 / 256 streams: base, band, base, band;
#   5. bench/serve-load.mjs 1 / 64 / 128 streams, TTFT of 2,000 tokens, the 4,000-token prompt's delay over 32
#      streams: base, then band;
#   6. compute-sanitizer memcheck and racecheck on gptoss_gpu_check --moe-stream --quick;
#   7. serve-load --http (the package's OpenAI server in a child process) at 1 and 64 streams, band only.
# Then the medians and the rule's line (written before any run): land if the check and the batch check pass,
# prefill 512 gains and prefill 2048 does not lose (more than 2%).
#   env: OUT (default ./gpu-logs), BUDGET (420), BAND_STEPS ("check batchcheck prefill step serve sanitizer http")
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-$PWD/gpu-logs}"
D="$OUT/band"
mkdir -p "$D"
STEPS="${BAND_STEPS:-check batchcheck prefill step serve sanitizer http}"
BUDGET="${BUDGET:-420}"
source scripts/gpu-host-setup.sh  # node, dist/, node_modules/, build-gpu/ from .gpu
source scripts/ab-lib.sh          # ab_budget, ab_fits, ab_elapsed
{ cat .gpu/COMMIT 2>/dev/null || git log -1 --format='%H %s' 2>/dev/null; } | tee "$D/commit.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$D/gpu.txt"
ab_budget "$BUDGET"
want() { [[ " $STEPS " == *" $1 "* ]]; }
BASE=$PWD/build-gpu/gpt_oss_node_base.node
BAND=$PWD/build-gpu/gpt_oss_node_band.node
check_ok=0
batch_ok=0

if want check && ab_fits 130; then
  timeout 130 build-gpu/gptoss_gpu_check > "$D/check.log" 2>&1
  rc=$?
  echo "gpu_check rc $rc $(grep -E '^gpu_check:' "$D/check.log" | tail -1) ($(ab_elapsed) s)"
  grep -E "^FAIL" "$D/check.log" | cut -c1-200 | head -20
  grep -E "^(PASS|FAIL).*(rows (48|64|128)|160)" "$D/check.log" | cut -c1-200
  [[ $rc == 0 ]] && check_ok=1
fi

if want batchcheck && ab_fits 100; then
  GPT_OSS_NODE_BINARY=$BAND timeout 60 node scripts/gpu-batch-check.mjs > "$D/batch-check.log" 2>&1
  rc1=$?
  GPT_OSS_NODE_BINARY=$BAND timeout 40 node scripts/gpu-batch-check.mjs --large > "$D/batch-check-large.log" 2>&1
  rc2=$?
  echo "batch check rc $rc1, --large rc $rc2 ($(ab_elapsed) s)"
  tail -6 "$D/batch-check.log"; tail -4 "$D/batch-check-large.log"
  [[ $rc1 == 0 && $rc2 == 0 ]] && batch_ok=1
fi

if want prefill; then
  for round in 1 2; do
    for v in base band; do
      ab_fits 45 || break 2
      bin=$BASE; [[ $v == band ]] && bin=$BAND
      mkdir -p "$D/prefill-$v"
      GPT_OSS_NODE_BINARY=$bin timeout 45 node bench/e2e.mjs --synthetic 20b --device cuda --prefill 512,1024,2048 --decode 0 \
        --repeat 5 --label "$v-$round" --out "$D/prefill-$v" > "$D/prefill-$v-$round.log" 2>&1
      echo "e2e prefill $v round $round rc $?: $(grep -E '^  prefill' "$D/prefill-$v-$round.log" | sed -E 's/ tok\/s \(/ (/; s/, median of [^)]*//' | tr -s ' ' | tr '\n' ';')"
    done
  done
fi

if want step; then
  for round in 1 2; do
    for v in base band; do
      ab_fits 40 || break 2
      bin=$BASE; [[ $v == band ]] && bin=$BAND
      mkdir -p "$D/step-$v"
      GPT_OSS_NODE_BINARY=$bin timeout 40 node bench/batch.mjs --synthetic 20b --layers 24 --device cuda --context 128 --decode 16 \
        --streams 64,128,256 --no-session --out "$D/step-$v" > "$D/step-$v-$round.log" 2>&1
      echo "step $v round $round rc $?"
      grep -E "^batch" "$D/step-$v-$round.log" | sed "s/^/  /"
    done
  done
fi

if want serve; then
  for v in base band; do
    ab_fits 110 || break
    bin=$BASE; [[ $v == band ]] && bin=$BAND
    mkdir -p "$D/serve-$v"
    GPT_OSS_NODE_BINARY=$bin timeout 110 node bench/serve-load.mjs --synthetic 20b --device cuda --streams 1,64,128 --prompt 64 --tokens 128 \
      --ttft-prompt 2000 --delay-prompt 4000 --delay-streams 32 --label "20b-$v" --out "$D/serve-$v" > "$D/serve-$v.log" 2>&1
    echo "serve-load $v rc $? ($(ab_elapsed) s)"
    grep -vE '^\s|^[{}]' "$D/serve-$v.log" | tail -9
  done
fi

if want http && ab_fits 100; then
  mkdir -p "$D/http-band"
  GPT_OSS_NODE_BINARY=$BAND timeout 100 node bench/serve-load.mjs --synthetic 20b --device cuda --http --streams 1,64 --prompt 64 --tokens 128 \
    --ttft-prompt 2000 --label 20b-band-http --out "$D/http-band" > "$D/http-band.log" 2>&1
  echo "serve-load --http band rc $? ($(ab_elapsed) s)"
  grep -vE '^\s|^[{}]' "$D/http-band.log" | tail -8
fi

if want sanitizer && command -v compute-sanitizer > /dev/null; then
  for tool in memcheck racecheck; do
    ab_fits 70 || break
    timeout 70 compute-sanitizer --tool $tool --print-limit 10 build-gpu/gptoss_gpu_check --moe-stream --quick > "$D/$tool.log" 2>&1
    echo "$tool --moe-stream --quick rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$D/$tool.log" | tail -1) $(grep -E '^gpu_check:' "$D/$tool.log" | tail -1)"
  done
fi

# shellcheck disable=SC2016 # JavaScript: its $ and backquotes are node's
node -e '
const fs = require("fs");
const [dir, checkOk, batchOk] = process.argv.slice(1);
const med = (a) => (a.length ? a.slice().sort((x, y) => x - y)[a.length >> 1] : NaN);
const jsons = (sub) => (fs.existsSync(`${dir}/${sub}`) ? fs.readdirSync(`${dir}/${sub}`).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(fs.readFileSync(`${dir}/${sub}/${f}`, "utf8"))) : []);
const pf = {};
for (const v of ["base", "band"]) for (const j of jsons(`prefill-${v}`)) for (const p of j.prefill || []) ((pf[`${v} ${p.tokens}`] ??= []).push(...(p.runsMs || [p.ms])));
const gains = {};
console.log("| prefill tokens | main ms (median of all runs) | band ms | change |\n|---|---|---|---|");
for (const n of [512, 1024, 2048]) {
  const a = med(pf[`base ${n}`] || []), b = med(pf[`band ${n}`] || []);
  gains[n] = (b / a - 1) * 100;
  console.log(`| ${n} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${Number.isFinite(gains[n]) ? (gains[n] >= 0 ? "+" : "") + gains[n].toFixed(1) + "%" : "-"} |`);
}
const st = {};
for (const v of ["base", "band"]) for (const j of jsons(`step-${v}`)) for (const b of j.batch || []) ((st[`${v} ${b.streams}`] ??= []).push(b.medianStepMs));
console.log("\n| streams | main ms a step (runs) | band ms a step (runs) |\n|---|---|---|");
for (const n of [64, 128, 256]) console.log(`| ${n} | ${(st[`base ${n}`] || []).map((x) => x.toFixed(2)).join(" / ") || "-"} | ${(st[`band ${n}`] || []).map((x) => x.toFixed(2)).join(" / ") || "-"} |`);
const ok = checkOk === "1" && batchOk === "1" && gains[512] < 0 && gains[2048] <= 2;
console.log(`\nBAND: check ${checkOk === "1" ? "passed" : "NOT passed"}, batch check ${batchOk === "1" ? "passed" : "NOT passed"}, prefill 512 ${Number.isFinite(gains[512]) ? gains[512].toFixed(1) : "?"}%, 2048 ${Number.isFinite(gains[2048]) ? gains[2048].toFixed(1) : "?"}% -> ${ok ? "LAND" : "do not land"}`);
' "$D" "$check_ok" "$batch_ok" | tee "$D/table.md"
echo "gpu-band-ab: $(ab_elapsed) s"
(cd "$OUT" && tar czf band.tgz band 2>/dev/null)
