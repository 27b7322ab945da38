#!/usr/bin/env bash
# Where a 64- and a 128-stream batched decode step goes (issue 11: 18.5-19 ms a step at 64 streams on
# the H200 against a ~3 ms bandwidth ceiling; no profile was ever taken), on the GPU host, in one call:
#   1. step times (bench/batch.mjs, synthetic 20b cut to LAYERS layers, greedy, graphs on) with the
#      experts through the grouped GEMM tile (GPTOSS_CUDA_MOE_BATCH=gemm, the default at 64+ streams)
#      and through the grouped decode MMA kernels (=mma, groups of 4): the MoE's share of a step is
#      the difference against a step whose MoE is cheap;
#   2. Nsight Compute, one duration per kernel of 2 decode steps at 64 and 128 streams (--graph-profiling
#      node: every node of the bucket's graph on its own; cold caches unless NCU_WARM=1), summed by
#      kernel name into $OUT/ncu-batch-<n>-summary.txt: which kernels own the 18.5 ms;
#   3. the full section set on the MoE kernels of one layer at 64 streams (gemm_tile_kernel with the
#      SwiGLU and the down epilogues, moe_count/scan/scatter/unpermute, split_bf16): DRAM throughput
#      against the 4.8 TB/s peak, achieved occupancy, L2 hit rate, warp stall reasons (long scoreboard =
#      the weight ring's latency; barrier = the per-step __syncthreads), tensor pipe utilisation.
# What to read: if gemm_tile_kernel is >= 70% of the step and its DRAM throughput is < 30% of peak with
# long-scoreboard stalls dominating, the ring depth (4 stages of 2 KB a CTA, bench/RESULTS.md "Where the
# 14 ms of an 8-stream step went") is the limit: deepen it or give a CTA more columns; if tiles of
# padding dominate (M tile 32 rows for 8 an expert), the 64-row-block decode-layout kernel with the
# activation fragments built once a layer is the next change (bench/RESULTS.md, issue-11 notes).
# Expected duration on the H200 host: build 3-5 min (skipped with GPT_OSS_NODE_BINARY), step times
# ~60 s, ncu 2 x 60-120 s, the MoE detail 60-120 s: under 10 minutes (each part has its own timeout).
#   env: LAYERS (4), STREAMS ("64 128"), SKIP_NCU=1, NCU_WARM=1, SKIP_MOE_DETAIL=1
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${GPT_OSS_NODE_BINARY:-}" && -f "${GPT_OSS_NODE_BINARY}" ]]; then
  OUT="${OUT:-$PWD/gpu-logs}"
  mkdir -p "$OUT"
  [[ -d .gpu/dist && ! -f dist/model.js ]] && cp -r .gpu/dist dist
else
  source scripts/gpu-addon.sh profile-batch
fi
LAYERS="${LAYERS:-4}"
SRC=(--synthetic 20b --layers "$LAYERS" --device cuda --context 128)
STREAMS="${STREAMS:-64 128}"
CSV_STREAMS="$(echo "$STREAMS" | tr ' ' ',')"

for moe in gemm mma; do
  GPTOSS_CUDA_MOE_BATCH=$moe timeout 150 node bench/batch.mjs "${SRC[@]}" --streams "$CSV_STREAMS" --decode 16 --out "$OUT" \
    > "$OUT/profile-batch-steps-$moe.log" 2>&1
  echo "step times, MoE $moe (rc $?):"
  grep -E "streams|ms a step|tok/s" "$OUT/profile-batch-steps-$moe.log" | tail -6
done

if [[ -z "${SKIP_NCU:-}" ]] && command -v ncu > /dev/null; then
  for n in $STREAMS; do
    timeout 240 ncu --clock-control none ${NCU_WARM:+--cache-control none} --graph-profiling node --metrics gpu__time_duration.sum \
      --csv --page raw node bench/batch.mjs "${SRC[@]}" --streams "$n" --decode 2 --out /tmp \
      > "$OUT/ncu-batch-$n.csv" 2> "$OUT/ncu-batch-$n.err"
    echo "ncu $n streams: rc $?, $(wc -l < "$OUT/ncu-batch-$n.csv") lines"
    # total ns by kernel name (the CSV's "Kernel Name" and "gpu__time_duration.sum" columns, found by header)
    node -e '
      const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.startsWith("\""));
      const split = (l) => l.slice(1, -1).split("\",\"");
      const head = split(lines[0]);
      const name = head.indexOf("Kernel Name"), dur = head.indexOf("gpu__time_duration.sum");
      const by = new Map();
      let total = 0;
      for (const l of lines.slice(2)) {
        const f = split(l);
        const t = Number(String(f[dur]).replace(/,/g, ""));
        if (!Number.isFinite(t)) continue;
        const k = String(f[name]).replace(/\(.*$/, "").replace(/<.*$/, "");
        by.set(k, (by.get(k) ?? 0) + t);
        total += t;
      }
      console.log(`all kernels: ${(total / 1e6).toFixed(2)} ms (2 steps, prefill and warm-up included: read the shares)`);
      for (const [k, t] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${(t / 1e6).toFixed(3).padStart(9)} ms ${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
    ' "$OUT/ncu-batch-$n.csv" > "$OUT/ncu-batch-$n-summary.txt" 2>&1
    head -12 "$OUT/ncu-batch-$n-summary.txt"
  done
fi
if [[ -z "${SKIP_MOE_DETAIL:-}" ]] && command -v ncu > /dev/null; then
  first="${STREAMS%% *}"
  timeout 240 ncu --clock-control none --graph-profiling node -k regex:"gemm_tile|moe_|split_bf16" --launch-skip 40 --launch-count 12 \
    --set full node bench/batch.mjs "${SRC[@]}" --streams "$first" --decode 2 --out /tmp > "$OUT/ncu-batch-moe-detail.txt" 2>&1
  echo "ncu MoE detail ($first streams): rc $?"
  grep -E "^  [a-z_]+.*\(|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|L2 Hit Rate|Compute \(SM\) Throughput" "$OUT/ncu-batch-moe-detail.txt" | head -60
fi
(cd "$OUT" && tar czf profile-batch.tgz --exclude='*.tgz' ncu-batch-* profile-batch-* 2>/dev/null)
