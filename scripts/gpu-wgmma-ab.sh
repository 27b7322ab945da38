#!/usr/bin/env bash
# The prefill GEMM tile on Hopper's wgmma (issue 12 item 4) in one go on the GPU host. Since the H100 run
# at 98332a8 (check 43/0, memcheck and racecheck clean; bench/RESULTS.md "Prefill GEMMs on wgmma")
# GPTOSS_CUDA_GEMM=auto picks the tile per problem on sm_90a (policy.h; the default since its H200 run at
# d91b169: 20b prefill 512 +5.6%, 2048 +14.7%, 120b 512 +2.7%, 2048 +4.0% against forced mma.sync): dense GEMMs (q/k/v, o, Q8_0 chunks, the LM
# head over a step's rows) of >= 64 rows on wgmma, the grouped MoE on wgmma from 128 routed rows an
# expert on average, mma.sync otherwise. GPTOSS_CUDA_GEMM=mma forces the mma.sync tile everywhere (the
# default before), =wgmma the wgmma tile everywhere.
#   1. gptoss_gpu_check --gemm-wgmma: the policy must pick the wgmma tile on this device under
#      GPTOSS_CUDA_GEMM=wgmma and split the problems as policy.h says without it, then every GEMM-tile
#      problem under the wgmma tile vs the CPU backend on fresh random data (linear bf16 / MXFP4 / Q8_0 with
#      partial row, column and K tiles; q/k/v in one launch; grouped MoE, MXFP4 in both layouts and bf16
#      experts, groups of 1..N rows, 64- and 128-row tiles): rel L2 <= 1e-4, no NaN, every output written;
#   2. compute-sanitizer memcheck and racecheck on its --quick set (SKIP_SANITIZER=1 skips them);
#   3. gptoss_gpu_bench --gemm: cuBLAS's bf16 GEMM (the ceiling, measured in the same run), then the
#      prefill qkv / o / grouped MoE (E32 and E128) at 512, 1024 and 2048 tokens, GPTOSS_CUDA_GEMM=mma and
#      =wgmma, twice in alternation (1024: the MoE E32 at the policy's edge, 128 rows an expert);
#   4. end to end on synthetic 20b weights: prefill 512 and 2048, the per-problem default against the
#      forced mma.sync tile (GPTOSS_CUDA_GEMM=mma) alternately (REPEATS rounds), and synthetic 120b once
#      each (SKIP_WGMMA_120B=1 skips it); WGMMA_E2E_VARIANTS (default "mma default") may add "wgmma"
#      (the wgmma tile forced everywhere); a median table and the rule's line;
#   5. with ncu on the host (SKIP_WGMMA_NCU=1 skips it): kernel durations by name over a 2-layer 20b cut
#      prefilling 2048 tokens, forced mma.sync and the default, and --set full on the first 12 wgmma tile
#      launches under GPTOSS_CUDA_GEMM=wgmma (tensor pipe, stalls).
# Run from the repository root (after scripts/gpu-export.sh here and scripts/gpu-host-setup.sh there). It uses $BUILD's gptoss_gpu_check,
# gptoss_gpu_bench and addon gpt_oss_node.node (gpu-check.sh's build, in gpu-all.sh; those three files
# are all it needs there) and builds them for sm_90a first when any is absent (~2-3 min on 16 cores); it
# unpacks .gpu/node.xz when node is not on the PATH.
# Expected run time after the build: ~8-9 min (check ~1 min, memcheck + racecheck ~2 min, bench ~2 min,
# e2e 20b 4 runs ~1.5 min, 120b 2 runs ~1.5 min, ncu ~1.5 min); WGMMA_STEPS="check e2e": ~4 min.
#   env: OUT (default ./gpu-logs), BUILD_DIR (build-gpu), REPEATS (2), SKIP_SANITIZER, SKIP_WGMMA_120B,
#        SKIP_WGMMA_NCU, WGMMA_E2E_VARIANTS, WGMMA_STEPS (default "check sanitize bench e2e ncu": a subset
#        splits the run over device calls of <= 10 min, e.g. "check sanitize bench", then "e2e ncu")
#
# Predictions for the per-problem default against forced mma.sync (bench/RESULTS.md "Prefill GEMMs on
# wgmma", written before the run from the H100 kernel table at 98332a8): e2e 20b prefill 512 +7% (+2% if
# the dense GEMMs save less end to end than in the kernel bench), 2048 +14% (the same as all-wgmma: every
# problem there is on wgmma); 120b 512 +4%, 2048 +4%. The rule for keeping it the default (else GpuKnobs::gemm Auto -> Mma in policy.h): the check passes
# (the sanitizers, when run, are clean), 20b prefill 512 and 2048 both gain (median above forced mma.sync)
# and 120b (when run) loses no more than 1% at either length.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/ab-lib.sh
OUT="${OUT:-$PWD/gpu-logs}"
BUILD="${BUILD_DIR:-build-gpu}"
D="$OUT/wgmma"
mkdir -p "$D"
REPEATS="${REPEATS:-2}"
{ cat COMMIT 2>/dev/null || git log -1 --format='%H %s' 2>/dev/null; } | tee "$D/commit.txt"
source scripts/gpu-host-setup.sh  # node, dist/, node_modules/, prebuilt binaries from .gpu (scripts/gpu-export.sh)
if [[ ! -x "$BUILD/gptoss_gpu_check" || ! -x "$BUILD/gptoss_gpu_bench" || ! -f "$BUILD/gpt_oss_node.node" ]]; then
  echo "=== build ($BUILD, ${GPTOSS_CUDA_ARCHS:-90a-real}) ==="
  t0=$(date +%s)
  cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_GPU_TESTS=ON -DGPTOSS_CUDA_ARCHS="${GPTOSS_CUDA_ARCHS:-90a-real}" \
    "-DCMAKE_JS_INC=$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api" > "$D/build.log" 2>&1 &&
    ninja -C "$BUILD" >> "$D/build.log" 2>&1 || { tail -30 "$D/build.log"; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s"
fi
STEPS=" ${WGMMA_STEPS:-check sanitize bench e2e ncu} "
step() { [[ $STEPS == *" $1 "* ]]; }
check_rc=-1 san_rc=-1
if step check; then
  echo "=== wgmma tile: native check ==="
  timeout 300 "$BUILD/gptoss_gpu_check" --gemm-wgmma > "$D/check.log" 2>&1
  check_rc=$?
  grep -E "FAIL|policy|^gpu_check:" "$D/check.log"
fi
if step sanitize && [[ -z "${SKIP_SANITIZER:-}" ]] && command -v compute-sanitizer > /dev/null; then
  san_rc=0
  for tool in memcheck racecheck; do
    timeout 200 compute-sanitizer --tool "$tool" --print-limit 10 "$BUILD/gptoss_gpu_check" --gemm-wgmma --quick > "$D/$tool.log" 2>&1
    rc=$?
    [[ $rc -ne 0 ]] && san_rc=$rc
    echo "$tool --gemm-wgmma --quick rc $rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$D/$tool.log" | tail -1)"
  done
fi
if step bench; then
  echo "=== wgmma tile: kernel bench ==="
  timeout 300 "$BUILD/gptoss_gpu_bench" --gemm > "$D/bench.log" 2>&1
  grep -E "^ceiling|^\| prefill" "$D/bench.log"
fi
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
export GPT_OSS_NODE_BINARY="${GPT_OSS_NODE_BINARY:-$BUILD/gpt_oss_node.node}"
run() {  # run <variant: default|mma|wgmma> <round> [model: 20b|120b]
  local vars=() model=${3:-20b}
  vars=(GPTOSS_CUDA_GEMM="$1")
  [[ $1 == default ]] && vars=(GPTOSS_CUDA_GEMM=auto)  # the per-problem policy, whatever policy.h's default is
  env ${vars[@]+"${vars[@]}"} timeout 240 node bench/e2e.mjs --synthetic "$model" --device cuda --prefill 512,2048 --decode 8 \
    --context 512 --label "gemm-policy-$1-$model-r$2" --out "$D" 2>&1 | tee -a "$D/e2e.log" | grep -E "prefill" | sed "s/^/$1 $model r$2 /"
}
VARIANTS="${WGMMA_E2E_VARIANTS:-mma default}"
if step e2e; then
  for r in $(seq 1 "$REPEATS"); do for v in $VARIANTS; do run "$v" "$r"; done; done
  [[ -z "${SKIP_WGMMA_120B:-}" ]] && for v in $VARIANTS; do run "$v" 1 120b; done
fi
if step ncu && [[ -z "${SKIP_WGMMA_NCU:-}" ]] && command -v ncu > /dev/null; then
  SRC=(--synthetic 20b --layers 2 --device cuda --prefill 2048 --decode 1 --context 2048 --label ncu --out /tmp)
  for v in mma default; do
    vars=(GPTOSS_CUDA_GEMM=auto)
    [[ $v == mma ]] && vars=(GPTOSS_CUDA_GEMM=mma)
    env ${vars[@]+"${vars[@]}"} timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw \
      node bench/e2e.mjs "${SRC[@]}" > "$D/ncu-$v.csv" 2> "$D/ncu-$v.err"
    echo "--- ncu $v: kernel time by name (2 layers, prefill 2048; the warm-up prefill included)"
    python3 scripts/ncu-step.py --by-name "$D/ncu-$v.csv" > "$D/ncu-$v.txt" && head -12 "$D/ncu-$v.txt"
  done
  # the first 12 wgmma tile launches (the warm-up prefills' and the timed one's first layers: each launch's
  # grid says which GEMM it is: q/k/v 40 column tiles, o 23, gate_up 45, down 23)
  GPTOSS_CUDA_GEMM=wgmma timeout 200 ncu --set full -k "regex:gemm_wgmma_kernel" --launch-count 12 \
    node bench/e2e.mjs "${SRC[@]}" > "$D/ncu-details.txt" 2>&1
  echo "ncu details: rc $?, $(wc -l < "$D/ncu-details.txt") lines; $(grep -cE 'Duration' "$D/ncu-details.txt") kernels"
fi
# shellcheck disable=SC2016 # JavaScript: its $ and backquotes are node's
ab_report '
const checkRc = Number(process.argv[2]), sanRc = Number(process.argv[3]);
const rows = {};
for (const j of runs) {
  const m = /gemm-policy-(default|mma|wgmma)-(20b|120b)-/.exec(j.label ?? j.file);
  if (!m) continue;
  for (const p of [].concat(j.prefill ?? [])) (rows[`${m[2]} ${m[1]} ${p.tokens}`] ??= []).push(p.tokensPerSecond);
}
console.log("| model | GEMM tile | prefill tokens | tok/s (runs) | median |\n|---|---|---|---|---|");
const tileName = { default: "per problem (default)", mma: "mma.sync forced", wgmma: "wgmma forced" };
for (const [k, v] of Object.entries(rows).sort()) {
  const [model, tile, n] = k.split(" ");
  console.log(`| ${model} | ${tileName[tile]} | ${n} | ${v.map((x) => x.toFixed(0)).join(", ")} | ${med(v).toFixed(0)} |`);
}
const gain = (model, n, v = "default") => (rows[`${model} ${v} ${n}`] && rows[`${model} mma ${n}`] ? (med(rows[`${model} ${v} ${n}`]) / med(rows[`${model} mma ${n}`]) - 1) * 100 : NaN);
const g512 = gain("20b", 512), g2048 = gain("20b", 2048), h512 = gain("120b", 512), h2048 = gain("120b", 2048);
const pct = (g) => (Number.isNaN(g) ? "not run" : `${g >= 0 ? "+" : ""}${g.toFixed(1)}%`);
// -1: the step did not run in this call (the sanitizers ran clean on these kernels at 98332a8; this
// change moves no kernel code); the check must have run and passed
const ok = checkRc === 0 && (sanRc === 0 || sanRc === -1) && g512 > 0 && g2048 > 0 &&
  (Number.isNaN(h512) || h512 >= -1) && (Number.isNaN(h2048) || h2048 >= -1);
console.log(`GEMM POLICY (GPTOSS_CUDA_GEMM=auto vs mma): check rc ${checkRc}, sanitizers rc ${sanRc}, 20b prefill 512 ${pct(g512)}, 2048 ${pct(g2048)}, 120b 512 ${pct(h512)}, 2048 ${pct(h2048)} (predicted +7 / +14 / +4 / +4) -> ${checkRc === -1 ? "no verdict: the check did not run in this call" : ok ? "meets the rule: the per-problem choice stays the default (policy.h GpuKnobs::gemm = Gemm::Auto)" : "FAILS the rule: revert the default to mma.sync everywhere (policy.h GpuKnobs::gemm = Gemm::Mma)"}`);
if (rows["20b wgmma 512"]) console.log(`all on wgmma vs mma: 20b 512 ${pct(gain("20b", 512, "wgmma"))}, 2048 ${pct(gain("20b", 2048, "wgmma"))}, 120b 512 ${pct(gain("120b", 512, "wgmma"))}, 2048 ${pct(gain("120b", 2048, "wgmma"))}`);
const t20 = rows["20b default 2048"], t120 = rows["120b default 2048"];
console.log(`targets (issue 12): 20b prefill 2048 ${t20 ? med(t20).toFixed(0) : "?"} tok/s (>= 40000), 120b ${t120 ? med(t120).toFixed(0) : "?"} (>= 20000)`);
' "$D" "$check_rc" "$san_rc" | tee "$D/table.md"
