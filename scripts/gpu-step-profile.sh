#!/usr/bin/env bash
# Where a batched decode step's GPU time goes, kernel by kernel (issue 11: the 64- and 128-stream steps are
# ~1/3 outside the MoE, unexplained). bench/batch.mjs --no-session at $STREAMS streams ($LAYERS layers of the
# synthetic 20b) runs twice under Nsight Compute with one metric (gpu__time_duration.sum, CUDA graphs profiled
# node by node), with $D1 and $D2 decode steps; everything else (load, prefill, the warm-up step) is the same in
# both, so per kernel name (time(D2) - time(D1)) / (D2 - D1) is its GPU time a step, and the count difference
# its launches a step. Per-layer kernels scale with the layers; the LM head, sampling and embedding do not
# (run at LAYERS=2 and LAYERS=4 to split them). ncu serialises kernels: the sum is GPU busy time, not the
# step's wall time (no overlap, no launch gaps).
# Device host: OUT=$OUT bash scripts/gpu-step-profile.sh (after source scripts/gpu-host-setup.sh, which it runs)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
[[ -n "${GPT_OSS_NODE_BINARY:-}" ]] || source scripts/gpu-host-setup.sh
STREAMS="${STREAMS:-64}" LAYERS="${LAYERS:-2}" D1="${D1:-2}" D2="${D2:-6}"
command -v ncu > /dev/null || { echo "gpu-step-profile: ncu is not on the PATH"; exit 1; }
for d in "$D1" "$D2"; do
  timeout "${PROFILE_TIMEOUT:-150}" ncu --clock-control none --graph-profiling node --metrics gpu__time_duration.sum \
    --csv --print-units base --log-file "$OUT/prof-s$STREAMS-l$LAYERS-d$d.csv" ${GPTOSS_PROFILE_ENV:-} \
    node bench/batch.mjs --synthetic 20b --layers "$LAYERS" --device cuda --context 32 --decode "$d" --streams "$STREAMS" \
    --no-session --out /tmp > "$OUT/prof-s$STREAMS-l$LAYERS-d$d.log" 2>&1
  echo "ncu, $STREAMS streams, $LAYERS layers, $d decode steps: rc $?"
done
python3 - "$OUT/prof-s$STREAMS-l$LAYERS-d$D1.csv" "$OUT/prof-s$STREAMS-l$LAYERS-d$D2.csv" "$D1" "$D2" "$LAYERS" <<'PY'
import csv, sys, collections
def load(path):
    t, n = collections.Counter(), collections.Counter()
    with open(path, newline='') as f:
        lines = [l for l in f if l.startswith('"')]
    for row in csv.DictReader(lines):
        if row.get('Metric Name') != 'gpu__time_duration.sum':
            continue
        name = row['Kernel Name']
        short = name.split('(')[0]
        if '<' in short:
            short = short.split('<')[0] + '<' + short.split('<', 1)[1][:60]
        t[short] += float(row['Metric Value'].replace(',', ''))
        n[short] += 1
    return t, n
(t1, n1), (t2, n2) = load(sys.argv[1]), load(sys.argv[2])
steps = int(sys.argv[4]) - int(sys.argv[3]); layers = int(sys.argv[5])
rows = [(k, (t2[k] - t1[k]) / steps / 1e3, (n2[k] - n1[k]) / steps) for k in set(t1) | set(t2)]
rows = [r for r in rows if r[2] > 0]
total = sum(r[1] for r in rows)
print(f"per decode step ({layers} layers): {total:.1f} us of kernel time, {sum(r[2] for r in rows):.0f} launches")
print(f"{'us/step':>9} {'%':>5} {'calls':>6}  kernel")
for k, us, c in sorted(rows, key=lambda r: -r[1]):
    print(f"{us:9.1f} {100 * us / total:5.1f} {c:6.1f}  {k}")
PY
