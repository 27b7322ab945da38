#!/usr/bin/env bash
# KV cache dtype A/B on the GPU host (issue 12 item 6): the decode cost of loadModel's kvCache, on
# synthetic 20b weights (generated in memory, ~3 s each), the dtypes alternately so drift hits all of
# them alike: REPEATS rounds of f16 and bf16 at each context of CONTEXTS, then f32 once at each.
# Prints one line a run and a median table last. Run from the repository root after a build
# (GPT_OSS_NODE_BINARY set, e.g. by scripts/gpu-addon.sh) with the carried node on the PATH.
#   env: OUT (default ./gpu-logs), REPEATS (2), CONTEXTS ("4096 8192"), DECODE (128)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT/kv"
REPEATS="${REPEATS:-2}"
DECODE="${DECODE:-128}"
run() {  # run <kv> <context> <round>
  node bench/e2e.mjs --synthetic 20b --device cuda --prefill "" --decode "$DECODE" --context "$2" --kv-cache "$1" \
    --label "kv-$1-ctx$2-r$3" --out "$OUT/kv" 2>&1 | tee -a "$OUT/kv/e2e.log" | grep -E "decode at" | sed "s/^/$1 r$3 /"
}
for ctx in ${CONTEXTS:-4096 8192}; do
  for r in $(seq 1 "$REPEATS"); do run f16 "$ctx" "$r"; run bf16 "$ctx" "$r"; done
  run f32 "$ctx" 1
done
node -e '
const fs = require("fs"), dir = process.argv[1];
const rows = {};
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) {
  const j = JSON.parse(fs.readFileSync(dir + "/" + f, "utf8"));
  if (!j.decode) continue;
  (rows[j.kvCache + " " + j.decode.context] ??= []).push(j.decode.tokensPerSecond);
}
const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
console.log("| kv cache | context | decode tok/s (runs) | median |\n|---|---|---|---|");
for (const [k, v] of Object.entries(rows).sort()) console.log(`| ${k.split(" ")[0]} | ${k.split(" ")[1]} | ${v.map((x) => x.toFixed(1)).join(", ")} | ${med(v).toFixed(1)} |`);
' "$OUT/kv" | tee "$OUT/kv/table.md"
