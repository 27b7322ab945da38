#!/usr/bin/env bash
# The streaming MoE of a batched decode step (issue 11; native/cuda/moe_stream.cu, forced by
# GPTOSS_CUDA_MOE_BATCH=stream; the default on Hopper from 17 to 128 streams of the 20b since the twelfth session)
# against the GEMM tile (GPTOSS_CUDA_MOE_BATCH=gemm),
# in one device call on the GPU host, each part under its own timeout, < 4 minutes in all:
#   1. gptoss_gpu_check --moe-stream: the policy must pick the kernel on this device, then routes of 1, 3, 8,
#      16, 17, 32, 33, 40 rows an expert with empty experts (E 5, 6, 32 and 128; widths 64/96, 544/320 and the
#      20b's 2880/2880), a random 64-token route under every batch path and 1 / 4 / 3 tokens under every decode
#      kernel and GPTOSS_CUDA_MOE_DECODE=stream, against the CPU backend on fresh random data: rel L2 <= 1e-4,
#      no NaN, every output written (~60 s);
#   2. gptoss_gpu_bench --moe-batch: the copy ceiling, then the whole MoE op of one 20b layer (count, scan,
#      scatter, split, gate_up, down, un-permute) for 8 / 64 / 128 streams' routings (top-4 of 32), under gemm,
#      mma and stream, and for 1 / 4 tokens (the decode path) the decode kernels against
#      GPTOSS_CUDA_MOE_DECODE=stream, eager and in a graph, twice in alternation: us a layer and GB/s of the
#      touched experts' packed bytes against the copy ceiling (~30 s);
#   3. bench/batch.mjs on synthetic 20b weights (greedy, graphs on, context 128, 16 decode steps), 64 and 128
#      streams, the default (gemm) and stream alternately, cut to 4 layers and then the full 24 (~2 min).
# Timeouts: check 100 s, bench 80 s, each 4-layer run 50 s, each 24-layer run 100 s (worst case 8 min).
# Then a median table and the rule's line (written before the first run): stream for batched steps past the
# decode kernels' pairs if the check passes and the 24-layer step is >= 5% faster at both 64 and 128 streams.
# (First runs, H100: +21% at 64, -5.6% at 128 with the 5-stage ring; the policy now takes the 3-stage ring and
# the measured band, shapes.h kMoeStreamAuto*.)
# Run from the repository root (scripts/gpu-export.sh, then scripts/gpu-host-setup.sh) with the prebuilt binaries: $BUILD_DIR
# (build-gpu) holding gptoss_gpu_check and gptoss_gpu_bench, GPT_OSS_NODE_BINARY the addon (e.g.
# build-gpu/gpt_oss_node.node) and dist/ built; node on the PATH (unpacked from .gpu/node.xz otherwise).
#   env: OUT (default ./gpu-logs), BUILD_DIR (build-gpu), MOE_BATCH_STEPS (default "check bench e2e"),
#        MOE_BATCH_LAYERS ("4 24"), MOE_BATCH_STREAMS ("64,128")
#
# Predictions (bench/RESULTS.md "The streaming MoE of a decode batch", written before any run): check all PASS;
# kernel bench on an H100 (copy ~3.0 TB/s) 64 streams ~250 us a layer (gemm ~530), 128 ~300 (gemm ~530), 8
# streams ~230 (mma ~330); e2e 24 layers at 64 streams ~1.6x the default's tok/s, 128 ~1.5x.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-$PWD/gpu-logs}"
BUILD="${BUILD_DIR:-build-gpu}"
D="$OUT/moe-batch"
mkdir -p "$D"
STEPS="${MOE_BATCH_STEPS:-check bench e2e}"
{ cat COMMIT 2>/dev/null || git log -1 --format='%H %s' 2>/dev/null; } | tee "$D/commit.txt"
source scripts/gpu-host-setup.sh  # node, dist/, node_modules/, prebuilt binaries from .gpu (scripts/gpu-export.sh)
t_start=$(date +%s)
check_ok=0

if [[ " $STEPS " == *" check "* ]]; then
  if [[ -x "$BUILD/gptoss_gpu_check" ]]; then
    timeout 100 "$BUILD/gptoss_gpu_check" --moe-stream > "$D/check.log" 2>&1
    rc=$?
    echo "gpu_check --moe-stream rc $rc ($(grep -c '^PASS' "$D/check.log") PASS, $(grep -c '^FAIL' "$D/check.log") FAIL)"
    grep -E "^(PASS|FAIL)" "$D/check.log" | cut -c1-170
    [[ $rc == 0 ]] && check_ok=1
  else
    echo "gpu_check: $BUILD/gptoss_gpu_check missing"
  fi
fi

if [[ " $STEPS " == *" bench "* ]]; then
  if [[ -x "$BUILD/gptoss_gpu_bench" ]]; then
    timeout 80 "$BUILD/gptoss_gpu_bench" --moe-batch > "$D/bench.log" 2>&1
    echo "gpu_bench --moe-batch rc $?"
    grep -E "^ceiling|^\|" "$D/bench.log"
  else
    echo "gpu_bench: $BUILD/gptoss_gpu_bench missing"
  fi
fi

if [[ " $STEPS " == *" e2e "* ]]; then
  if [[ -n "${GPT_OSS_NODE_BINARY:-}" && -f "$GPT_OSS_NODE_BINARY" && -f dist/model.js ]]; then
    for layers in ${MOE_BATCH_LAYERS:-4 24}; do
      for path in gemm stream; do
        mkdir -p "$D/e2e-$layers-$path"
        GPTOSS_CUDA_MOE_BATCH=$path timeout "$([[ $layers -gt 8 ]] && echo 100 || echo 50)" node bench/batch.mjs \
          --synthetic 20b --layers "$layers" --device cuda --context 128 --decode 16 --streams "${MOE_BATCH_STREAMS:-64,128}" \
          --out "$D/e2e-$layers-$path" > "$D/e2e-$layers-$path.log" 2>&1
        echo "batch.mjs $layers layers, MoE $path: rc $?"
        grep -E "^batch|^session" "$D/e2e-$layers-$path.log" | sed "s/^/  /"
      done
    done
    # shellcheck disable=SC2016 # JavaScript: its $ and backquotes are node's
    node -e '
const fs = require("fs");
const dir = process.argv[1], checkOk = process.argv[2] === "1";
const rows = {};
for (const sub of fs.readdirSync(dir).filter((d) => /^e2e-\d+-(gemm|stream)$/.test(d))) {
  const [, layers, path] = /^e2e-(\d+)-(gemm|stream)$/.exec(sub);
  for (const f of fs.readdirSync(dir + "/" + sub).filter((f) => f.endsWith(".json"))) {
    const j = JSON.parse(fs.readFileSync(dir + "/" + sub + "/" + f, "utf8"));
    for (const b of j.batch) rows[`${layers} ${b.streams} ${path}`] = b;
  }
}
console.log("| layers | streams | gemm ms/step (median) | gemm tok/s | stream ms/step (median) | stream tok/s | stream vs gemm |\n|---|---|---|---|---|---|---|");
const gains = {};
for (const key of Object.keys(rows).filter((k) => k.endsWith(" gemm")).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))) {
  const [layers, n] = key.split(" ");
  const g = rows[key], s = rows[`${layers} ${n} stream`];
  const gain = s ? (g.medianStepMs / s.medianStepMs - 1) * 100 : NaN;
  gains[`${layers} ${n}`] = gain;
  console.log(`| ${layers} | ${n} | ${g.medianStepMs.toFixed(2)} | ${g.tokPerS.toFixed(0)} | ${s ? s.medianStepMs.toFixed(2) : "-"} | ${s ? s.tokPerS.toFixed(0) : "-"} | ${Number.isFinite(gain) ? (gain >= 0 ? "+" : "") + gain.toFixed(1) + "%" : "-"} |`);
}
const full = Object.keys(gains).map((k) => k.split(" ")).filter(([l]) => l === String(Math.max(...Object.keys(gains).map((k) => Number(k.split(" ")[0])))));
const at = (n) => full.find(([, s]) => s === String(n));
const g64 = at(64) ? gains[at(64).join(" ")] : NaN, g128 = at(128) ? gains[at(128).join(" ")] : NaN;
const ok = checkOk && g64 >= 5 && g128 >= 5;
console.log(`MOE BATCH STREAM: check ${checkOk ? "passed" : "NOT passed"}, step ${Number.isFinite(g64) ? g64.toFixed(1) : "?"}% faster at 64 streams, ${Number.isFinite(g128) ? g128.toFixed(1) : "?"}% at 128 (${full.length ? full[0][0] : "?"} layers) -> ${ok ? "stream wins at both" : "not at both (the policy takes stream only where it was measured faster)"}`);
' "$D" "$check_ok" | tee "$D/table.md"
  else
    echo "e2e: GPT_OSS_NODE_BINARY or dist/model.js missing (skipped)"
  fi
fi
echo "gpu-moe-batch-ab: $(( $(date +%s) - t_start )) s"
(cd "$OUT" && tar czf moe-batch.tgz moe-batch 2>/dev/null)
