#!/usr/bin/env bash
# Decode GEMVs at the copy ceiling (issue 12 item 2: bf16 q/k/v, o, the fused add_rmsnorm_qkv, the LM
# head; issue 15: the Q8_0 GEMV of denseWeights 'q8' and GGUF files): the default (Xs where it applies,
# since 076961b) against the opt-out and the CTA variants, in one go on the GPU host, after a build (build-gpu: scripts/gpu-check.sh or
# gpu-all.sh made it; GPT_OSS_NODE_BINARY for the end-to-end part, as gpu-all.sh sets it):
#   1. gptoss_gpu_check --gemv: every GEMV shape of gpt-oss (bf16 and Q8_0; 1-8 tokens; small, odd and
#      past-the-bound shapes; qkv and add_rmsnorm_qkv) under each variant, against the CPU on fresh random
#      data (rel L2 <= 1e-5, no NaN, every output written), with each variant's largest difference from the
#      default's output; then compute-sanitizer memcheck on the --quick set (SKIP_SANITIZER=1 skips it);
#   2. gptoss_gpu_bench --gemv: each shape under each variant, twice in alternation, GB/s and % of the
#      device-to-device copy ceiling measured in the same run; the table below gives old vs new per shape;
#   3. end to end (SKIP_GEMV_E2E=1 skips it): synthetic 20b decode at context 512, bf16 dense weights with
#      the CTA variants, and denseWeights 'q8' default (Xs) vs warp, alternately (REPEATS rounds).
# Variants: the default (matmul.cu's gemv_xs_kernel: bf16 at 2..8 tokens, Q8_0 at 1..8), GPTOSS_CUDA_GEMV=warp
# (the opt-out: the kernels before Xs), GPTOSS_CUDA_GEMV_CTAS=1|2 (CTAs a SM of the persistent GEMV grids,
# default all that fit).
#   env: OUT (default ./gpu-logs), BUILD_DIR (build-gpu), REPEATS (2), SKIP_SANITIZER, SKIP_GEMV_E2E
# Expected run time: ~5 min (check ~1 min, memcheck ~1.5 min, bench ~1 min, e2e ~2 min).
#
# Predictions and the rules for the defaults: bench/RESULTS.md, "Decode GEMVs at the copy ceiling"
# (written before the first run); the script prints each rule's verdict last ("GEMV RULE ..."). The Xs rules
# were met at 076961b and Xs became the default; a "not met" now means the default should go back to warp.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
BUILD="${BUILD_DIR:-build-gpu}"
mkdir -p "$OUT/gemv"
D="$OUT/gemv"

echo "=== gemv: gpu_check --gemv ==="
timeout 300 "$BUILD/gptoss_gpu_check" --gemv > "$D/check.log" 2>&1
echo "gpu_check --gemv rc $? $(grep -E '^gpu_check:' "$D/check.log")"
grep -E "^FAIL" "$D/check.log" | head -20
grep -E "max \|diff\|" "$D/check.log" | grep -vE "diff\| vs default 0\.0+$" | head -10 | sed 's/^/nonzero diff vs default: /'
if [[ -z "${SKIP_SANITIZER:-}" ]] && command -v compute-sanitizer > /dev/null; then
  timeout 200 compute-sanitizer --tool memcheck --print-limit 10 "$BUILD/gptoss_gpu_check" --gemv --quick > "$D/memcheck.log" 2>&1
  echo "memcheck --gemv --quick rc $? $(grep -E 'ERROR SUMMARY' "$D/memcheck.log" | tail -1)"
fi

echo "=== gemv: gptoss_gpu_bench --gemv ==="
timeout 300 "$BUILD/gptoss_gpu_bench" --gemv > "$D/bench.log" 2>&1
echo "bench rc $? $(grep -E '^ceiling: device-to-device' "$D/bench.log")"

if [[ -z "${SKIP_GEMV_E2E:-}" && -n "${GPT_OSS_NODE_BINARY:-}" && -f dist/model.js ]]; then
  echo "=== gemv: e2e synthetic 20b, decode at 512 ==="
  run() {  # run <dense: as-stored|q8> <variant> <round>
    local env=() v="$2"
    [[ $v == *warp* ]] && env+=(GPTOSS_CUDA_GEMV=warp)
    [[ $v == *ctas1* ]] && env+=(GPTOSS_CUDA_GEMV_CTAS=1)
    [[ $v == *ctas2* ]] && env+=(GPTOSS_CUDA_GEMV_CTAS=2)
    env "${env[@]}" timeout 240 node bench/e2e.mjs --synthetic 20b --device cuda --dense-weights "$1" --prefill 512 \
      --decode "${DECODE:-128}" --context 512 --label "gemv-$1-${v// /_}-r$3" --out "$D" 2>&1 | tee -a "$D/e2e.log" |
      grep -E "decode at" | sed "s/^/$1 $v r$3 /"
  }
  for r in $(seq 1 "${REPEATS:-2}"); do
    for v in default ctas1 ctas2; do run as-stored "$v" "$r"; done
    for v in warp default ctas1; do run q8 "$v" "$r"; done
  done
fi

node -e '
const fs = require("fs"), dir = process.argv[1];
const med = (a) => { if (!a.length) return NaN; const s = a.slice().sort((x, y) => x - y), h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
// bench rows: | <kernel> [<variant>] pass <p> | <shape> | ms | <GB/s> GB/s | ceiling | pct% |
const log = fs.existsSync(dir + "/bench.log") ? fs.readFileSync(dir + "/bench.log", "utf8") : "";
const ceiling = Number((/device-to-device copy (\d+) GB\/s/.exec(log) || [])[1]);
const rows = {};
for (const line of log.split("\n")) {
  const m = /^\| (.+?) \[(.+?)\] pass (\d) \| (.+?) \| ([\d.]+) \| ([\d.]+) GB\/s \|/.exec(line);
  if (!m) continue;
  const key = m[1] + " " + m[4];
  ((rows[key] ??= {})[m[2]] ??= []).push(Number(m[6]));
}
const variants = ["warp", "default", "ctas1", "warp ctas1", "ctas2", "warp ctas2"];
const pct = (gbs) => (100 * gbs / ceiling).toFixed(0) + "%";
let md = `copy ceiling ${ceiling} GB/s (same run); each cell: median GB/s of 2 passes, % of copy (pass spread)\n\n`;
md += "| kernel, shape | " + variants.join(" | ") + " | best vs default |\n|---|" + variants.map(() => "---|").join("") + "---|\n";
const best = {};
for (const [k, r] of Object.entries(rows)) {
  const d = med(r.default ?? []);
  let b = "default", bv = d;
  const cells = variants.map((v) => {
    const a = r[v] ?? [];
    if (!a.length) return "-";
    const m = med(a);
    if (m > bv) { b = v; bv = m; }
    const spread = a.length > 1 ? ` ±${(50 * Math.abs(a[0] - a[1]) / m).toFixed(1)}%` : "";
    return `${m.toFixed(0)} (${pct(m)}${spread})`;
  });
  best[k] = { d, r };
  md += `| ${k} | ${cells.join(" | ")} | ${b} ${((bv / d - 1) * 100).toFixed(1)}% |\n`;
}
// end to end
const e2e = {};
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) {
  const j = JSON.parse(fs.readFileSync(dir + "/" + f, "utf8"));
  const m = /gemv-(as-stored|q8)-(.+)-r\d+/.exec(j.label ?? f);
  if (!m || !j.decode) continue;
  ((e2e[m[1]] ??= {})[m[2].replace(/_/g, " ")] ??= []).push(j.decode.tokensPerSecond);
}
if (Object.keys(e2e).length) {
  md += "\n| e2e 20b decode at 512 | variant | tok/s (runs) | median | vs default |\n|---|---|---|---|---|\n";
  for (const [dense, vs] of Object.entries(e2e))
    for (const [v, a] of Object.entries(vs))
      md += `| ${dense} | ${v} | ${a.map((x) => x.toFixed(1)).join(", ")} | ${med(a).toFixed(1)} | ${((med(a) / med(vs.default ?? [NaN]) - 1) * 100).toFixed(1)}% |\n`;
}
console.log(md);
// Rules (bench/RESULTS.md "Decode GEMVs at the copy ceiling"). gpu_check --gemv must pass first.
const get = (k, v) => med(((rows[k] ?? {})[v]) ?? []);
const gain = (k, v) => get(k, v) / get(k, "default") - 1;
const xsGain = (k) => get(k, "default") / get(k, "warp") - 1;  // Xs (the default) over the opt-out
const q8rows = Object.keys(rows).filter((k) => k.startsWith("q8_0"));
const q8head = "q8_0 gemv lm_head n1 [201088, 2880]";
const q8ok = q8rows.length > 0 && q8rows.every((k) => xsGain(k) > 0) && get(q8head, "default") >= 0.7 * ceiling;
console.log(`GEMV RULE q8 (Xs the Q8_0 default: default beats warp on every q8_0 row and the LM head n1 >= 70% of copy): ` +
  `${q8ok ? "MET" : "not met"} (LM head n1 warp ${pct(get(q8head, "warp"))} -> default ${pct(get(q8head, "default"))}, n4 ` +
  `${pct(get("q8_0 gemv lm_head n4 [201088, 2880]", "warp"))} -> ${pct(get("q8_0 gemv lm_head n4 [201088, 2880]", "default"))})`);
const bfn4 = Object.keys(rows).filter((k) => k.startsWith("bf16") && / n4 /.test(k));
const bfhead = "bf16 gemv lm_head n4 [201088, 2880]";
const bfok = bfn4.length > 0 && xsGain(bfhead) >= 0.10 && bfn4.every((k) => xsGain(k) >= -0.02);
console.log(`GEMV RULE bf16 n>1 (Xs the default at 2..8 tokens: LM head n4 +10% or more over warp, no n4 row 2% worse): ` +
  `${bfok ? "MET" : "not met"} (LM head n4 warp ${pct(get(bfhead, "warp"))} -> default ${pct(get(bfhead, "default"))})`);
const n1 = ["bf16 gemv qkv n1 [5120, 2880] x24", "bf16 add_rmsnorm_qkv n1 [5120, 2880] x24", "bf16 gemv o_proj n1 [2880, 4096] x24"];
for (const c of ["ctas1", "ctas2"]) {
  const ok = n1.every((k) => gain(k, c) >= 0.02) && gain("bf16 gemv lm_head n1 [201088, 2880]", c) >= -0.02;
  const e = e2e["as-stored"] ?? {};
  const eg = (med(e[c] ?? []) / med(e.default ?? []) - 1) * 100;
  console.log(`GEMV RULE ${c} (the Row1 default: qkv, add_rmsnorm_qkv and o at n1 each +2% or more, LM head n1 not 2% worse, ` +
    `e2e bf16 decode at 512 +1% or more): ${ok && eg >= 1 ? "MET" : "not met"} (` +
    n1.map((k) => `${k.split(" n1")[0].replace("bf16 ", "")} ${pct(get(k, "default"))} -> ${pct(get(k, c))}`).join(", ") +
    `; e2e ${isNaN(eg) ? "not run" : eg.toFixed(1) + "%"})`);
}
' "$D" | tee "$D/table.md"
