# shellcheck shell=bash
# Shared by the end-to-end A/B scripts on the GPU host (gpu-kv-ab.sh, gpu-moe-relaid-ab.sh): one
# bench/e2e.mjs run on synthetic 20b weights, and the node prelude their median tables are written in.
# Source it (`source "$(dirname "$0")/ab-lib.sh"`); it sets no shell options of its own.

# ab_e2e <dir> <label> <line-prefix> <grep-regex> [NAME=value ...] -- <bench/e2e.mjs arguments>
# One e2e run on CUDA with NAME=value in its environment: its JSON lands in <dir> (named after <label>),
# its whole output is appended to <dir>/e2e.log, and the lines matching <grep-regex> are printed with
# <line-prefix> in front.
ab_e2e() {
  local dir=$1 label=$2 prefix=$3 pattern=$4
  shift 4
  local vars=()
  while [[ $# -gt 0 && $1 != -- ]]; do vars+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  env ${vars[@]+"${vars[@]}"} node bench/e2e.mjs --synthetic 20b --device cuda "$@" --label "$label" --out "$dir" 2>&1 |
    tee -a "$dir/e2e.log" | grep -E "$pattern" | sed "s/^/$prefix /"
}

# ab_report <js> <dir> [args...]: runs <js> in node after a prelude that defines
#   runs: every e2e JSON in <dir> that has a decode figure (the parsed object, plus file: its name);
#   med(a): the median of a's numbers (the upper one of an even count; NaN for none).
# In <js>, process.argv[1] is <dir> and the further args follow it.
ab_report() {
  local js=$1
  shift
  # shellcheck disable=SC2016 # JavaScript: its $ and backquotes are node's
  node -e '
const fs = require("fs");
const med = (a) => (a.length ? a.slice().sort((x, y) => x - y)[a.length >> 1] : NaN);
const runs = fs.readdirSync(process.argv[1]).filter((f) => f.endsWith(".json"))
  .map((f) => ({ ...JSON.parse(fs.readFileSync(process.argv[1] + "/" + f, "utf8")), file: f }))
  .filter((j) => j.decode);
'"$js" "$@"
}

# A device call's time budget for the one-call A/B scripts (gpu-band-ab.sh, gpu-act-ab.sh, gpu-ws-ab.sh), whose later steps are
# skipped when the time left would not cover their timeout:
#   ab_budget <seconds>  starts the clock;  ab_elapsed / ab_left  seconds since / left;
#   ab_fits <seconds>    whether a step with that timeout still fits (else says so and returns 1).
ab_budget() { AB_T0=$(date +%s); AB_BUDGET=$1; }
ab_elapsed() { echo $(( $(date +%s) - AB_T0 )); }
ab_left() { echo $(( AB_BUDGET - $(ab_elapsed) )); }
ab_fits() { [[ $(ab_left) -ge $1 ]] || { echo "skipped (needs $1 s, $(ab_left) s left of $AB_BUDGET)"; return 1; }; }

# ab_need_binaries <script name>: exits unless scripts/gpu-export.sh --binaries' programs are in build-gpu (building them on
# the device would take ~4 of the call's minutes).
ab_need_binaries() {
  local b
  for b in gptoss_gpu_check gptoss_gpu_bench gpt_oss_node.node; do
    if [[ ! -x build-gpu/$b ]]; then
      echo "$1: build-gpu/$b missing: export with 'bash scripts/gpu-export.sh --binaries' and carry .gpu" >&2
      exit 1
    fi
  done
}

# ab_prefill_line <e2e log>: its prefill lines on one line ("prefill 2048 tokens: 23161.8 tok/s (88.4 ms); ...").
ab_prefill_line() { grep -E '^  prefill' "$1" | sed -E 's/, median of [^)]*//' | tr -s ' ' | tr '\n' ';'; }

# ab_serve_table <dir>: issue 11's serving table on the synthetic 20b (1 / 64 / 128 streams, TTFT of 2,000 tokens,
# a 4,000-token prompt's delay over 32 streams) into <dir>/serve, its summary printed; 130 s at most.
ab_serve_table() {
  local dir=$1 gpu
  # the label names the GPU that ran (h100, h200, ...), not the one the table was first made for
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | grep -oE '[A-Z]+[0-9]+' | head -1 | tr 'A-Z' 'a-z')
  timeout 130 node bench/serve-load.mjs --synthetic 20b --device cuda --streams 1,64,128 --prompt 64 --tokens 128 \
    --ttft-prompt 2000 --delay-prompt 4000 --delay-streams 32 --label "20b-${gpu:-gpu}" --out "$dir/serve" > "$dir/serve.log" 2>&1
  echo "serve-load rc $?"
  grep -vE '^\s|^[{}]' "$dir/serve.log" | tail -12
}

# ab_round_medians <dir>: the e2e runs in <dir> labelled <variant>-r<round> (bench/e2e.mjs --label), each variant's
# median decode rate, and against the variant "base" of the same round in percent.
ab_round_medians() {
  # shellcheck disable=SC2016 # JavaScript: its $ and backquotes are node's
  ab_report '
const by = {};  // variant -> round -> tok/s
for (const j of runs) {
  const m = /^(.*)-r([0-9]+)$/.exec(j.label || "");
  if (m) (by[m[1]] ??= {})[m[2]] = j.decode.tokensPerSecond;
}
const base = by.base || {};
for (const [v, rounds] of Object.entries(by)) {
  const vs = Object.entries(rounds).filter(([r]) => base[r]).map(([r, t]) => ((100 * (t / base[r] - 1)).toFixed(2) + "%"));
  console.log(`${v}: median ${med(Object.values(rounds)).toFixed(1)} tok/s over ${Object.keys(rounds).length}` +
              (v === "base" ? "" : `; against base in the same round: ${vs.join(" ")}`));
}
' "$1"
}
