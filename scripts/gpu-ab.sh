#!/usr/bin/env bash
# End-to-end A/B of two commits in one GPU run (GPU host, from this tree's root): this tree's addon and
# the one of another exported tree ($BASE, with its dist/), each built for GPTOSS_CUDA_ARCHS (default
# 90a-real), then bench/e2e.mjs on the same synthetic model alternately, base first, REPEATS times for
# every context of CONTEXTS. Each run's JSON and log go to $OUT with its label ab-<base|new>-c<ctx>-<i>.
#   env: BASE (required), MODEL (20b), CONTEXTS ("512 4096"), REPEATS (2), DECODE (128), BUILD_DIR (build-gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
: "${BASE:?BASE: the other tree (a checkout with dist/ and node_modules/ in place, as scripts/gpu-host-setup.sh leaves the root)}"
ARCHS="${GPTOSS_CUDA_ARCHS:-90a-real}"
build() {  # build <tree> <build dir>: the addon alone
  local inc="-DCMAKE_JS_INC=$1/node_modules/node-api-headers/include;$1/node_modules/node-addon-api"
  { cmake -G Ninja -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_CUDA_ARCHS="$ARCHS" "$inc" &&
    ninja -C "$2" gpt_oss_node; } > "$OUT/ab-build-$(basename "$1").log" 2>&1 || { echo "build of $1 FAILED"; tail -20 "$OUT/ab-build-$(basename "$1").log"; exit 1; }
}
NEW="$PWD"; NEWB="$PWD/${BUILD_DIR:-build-gpu}"; BASEB="$BASE/build-ab"
[[ -f "$NEWB/gpt_oss_node.node" ]] || build "$NEW" "$NEWB"
[[ -f "$BASEB/gpt_oss_node.node" ]] || build "$BASE" "$BASEB"
echo "base: $(cat "$BASE/COMMIT" 2>/dev/null)  new: $(cat COMMIT 2>/dev/null)" | tee "$OUT/ab.txt"
for ctx in ${CONTEXTS:-512 4096}; do
  for i in $(seq 1 "${REPEATS:-2}"); do
    for side in base new; do
      tree=$NEW; bin=$NEWB/gpt_oss_node.node
      [[ $side == base ]] && { tree=$BASE; bin=$BASEB/gpt_oss_node.node; }
      (cd "$tree" && GPT_OSS_NODE_BINARY="$bin" node bench/e2e.mjs --synthetic "${MODEL:-20b}" --device cuda --prefill "" \
         --decode "${DECODE:-128}" --context "$ctx" --label "ab-$side-c$ctx-$i" --out "$OUT") > "$OUT/ab-$side-c$ctx-$i.log" 2>&1
      echo "$side ctx $ctx #$i: $(grep -m1 -oE 'decode at[^|]*' "$OUT/ab-$side-c$ctx-$i.log" || tail -1 "$OUT/ab-$side-c$ctx-$i.log")" | tee -a "$OUT/ab.txt"
    done
  done
done
