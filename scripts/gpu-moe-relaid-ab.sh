#!/usr/bin/env bash
# Decode MoE on the decode layout (issue 12 item 1; GPTOSS_CUDA_MOE_DECODE=mma-relaid, opt-in: compiled,
# not yet run on a GPU) against the default, end to end on the GPU host: synthetic 20b weights, the two
# alternately (REPEATS rounds) so drift hits both alike, decode at each context of CONTEXTS and one
# prefill of PREFILL tokens (the grouped GEMM reads the layout too). Prints one line a run, a median
# table (decode, prefill, the re-layout's load cost from model.info.convertSeconds) and the rule's line.
# Run from the repository root after a build (GPT_OSS_NODE_BINARY set, e.g. by scripts/gpu-addon.sh)
# with the carried node on the PATH.
#   env: OUT (default ./gpu-logs), REPEATS (2), CONTEXTS ("512 4096"), DECODE (128), PREFILL (2048)
#
# Predictions (bench/RESULTS.md issue 12 item 1, written before any run): decode at 512 +5..8%
# (498 -> ~530 tok/s on the harness; the MoE kernel 34 -> ~29 us, 36% -> ~42% of copy), prefill
# within 2%, re-layout ~10 ms for the 20b's 24 layers. Rule: mma-relaid becomes the sm_90 default
# (moe_decode_layout() without the knob) only if gpu_check's "decode layout" and mma-relaid cases pass,
# decode at 512 gains >= 3% and prefill loses <= 2%.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/ab-lib.sh
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT/relaid"
REPEATS="${REPEATS:-2}"
DECODE="${DECODE:-128}"
run() {  # run <variant: default|mma-relaid> <context> <round>
  local vars=()
  [[ $1 == mma-relaid ]] && vars=(GPTOSS_CUDA_MOE_DECODE=mma-relaid)
  ab_e2e "$OUT/relaid" "moe-$1-ctx$2-r$3" "$1 r$3" "decode at|prefill" ${vars[@]+"${vars[@]}"} -- \
    --prefill "${PREFILL:-2048}" --decode "$DECODE" --context "$2"
}
for ctx in ${CONTEXTS:-512 4096}; do
  for r in $(seq 1 "$REPEATS"); do run default "$ctx" "$r"; run mma-relaid "$ctx" "$r"; done
done
# shellcheck disable=SC2016 # JavaScript: its $ and backquotes are node's
ab_report '
const rows = {};
for (const j of runs) {
  const v = /moe-(default|mma-relaid)-/.exec(j.label ?? j.file)?.[1] ?? "?";
  const r = (rows[v + " " + j.decode.context] ??= { dec: [], pre: [], conv: [] });
  r.dec.push(j.decode.tokensPerSecond);
  const p = Array.isArray(j.prefill) ? j.prefill[0] : j.prefill;
  if (p && p.tokensPerSecond) r.pre.push(p.tokensPerSecond);
  r.conv.push((j.convertSeconds ?? 0) * 1e3);
}
console.log("| moe decode | context | decode tok/s (runs) | median | prefill tok/s median | convert ms |\n|---|---|---|---|---|---|");
for (const [k, r] of Object.entries(rows).sort())
  console.log(`| ${k.split(" ")[0]} | ${k.split(" ")[1]} | ${r.dec.map((x) => x.toFixed(1)).join(", ")} | ${med(r.dec).toFixed(1)} | ${med(r.pre).toFixed(0)} | ${med(r.conv).toFixed(1)} |`);
const d = rows["default 512"], m = rows["mma-relaid 512"];
if (d && m) {
  const gain = (med(m.dec) / med(d.dec) - 1) * 100, pre = (med(m.pre) / med(d.pre) - 1) * 100;
  console.log(`MOE RELAID: decode at 512 ${gain.toFixed(1)}%, prefill ${pre.toFixed(1)}% -> ${gain >= 3 && pre >= -2 ? "meets the rule (check gpu_check before flipping)" : "stays opt-in"}`);
}
' "$OUT/relaid" | tee "$OUT/relaid/table.md"
