#!/usr/bin/env bash
# Pipelined decode (issue 11: the engine queues a decode step before the last one's ids are back) on
# the GPU host, in one device call: the check of the pipelined batch against the plain padded one on
# the same device (scripts/gpu-pipeline-check.mjs: lockstep logits on tiny, 20b x 4 and 20b x 2 with 70
# sequences, and the engine pipelined vs plain), compute-sanitizer memcheck on its quick schedule, and
# the serving bench plain then pipelined in one process (bench/serve-load.mjs --pipeline both) on the
# synthetic 20b. Predictions: bench/RESULTS.md, "Pipelined decode (compiled, not yet run on a GPU)".
#   Uses $GPT_OSS_NODE_BINARY when it names a built addon, else builds one (scripts/gpu-addon.sh, ~3-5 min
#   for 90a-real on the GPU host).
#   Expected durations on an H200 host (estimates, never run): check 40-80 s, memcheck 60-120 s, bench
#   60-120 s (the 20b weights generated in ~30 s); each part has its own timeout (150 + 150 + 240 s).
#   env: SKIP_PIPELINE_CHECK=1, SKIP_PIPELINE_SANITIZER=1, SKIP_PIPELINE_BENCH=1,
#        PIPELINE_STREAMS (default 1,8,64), PIPELINE_TOKENS (default 128), PIPELINE_PROMPT (default 64)
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${GPT_OSS_NODE_BINARY:-}" && -f "${GPT_OSS_NODE_BINARY}" ]]; then
  OUT="${OUT:-$PWD/gpu-logs}"
  mkdir -p "$OUT"
  [[ -d .gpu/dist && ! -f dist/model.js ]] && cp -r .gpu/dist dist
else
  source scripts/gpu-addon.sh pipeline
fi
if [[ -z "${SKIP_PIPELINE_CHECK:-}" ]]; then
  timeout 150 node scripts/gpu-pipeline-check.mjs > "$OUT/pipeline-check.log" 2>&1
  echo "pipeline check rc $?"
  tail -14 "$OUT/pipeline-check.log"
fi
if [[ -z "${SKIP_PIPELINE_SANITIZER:-}" ]] && command -v compute-sanitizer > /dev/null; then
  timeout 150 compute-sanitizer --tool memcheck --print-limit 10 node scripts/gpu-pipeline-check.mjs --quick > "$OUT/pipeline-memcheck.log" 2>&1
  echo "pipeline memcheck rc $? $(grep -E 'ERROR SUMMARY' "$OUT/pipeline-memcheck.log" | tail -1) $(grep -E 'gpu-pipeline-check:' "$OUT/pipeline-memcheck.log" | tail -1)"
fi
if [[ -z "${SKIP_PIPELINE_BENCH:-}" ]]; then
  timeout 240 node bench/serve-load.mjs --synthetic 20b --device cuda --backend native --pipeline both --streams "${PIPELINE_STREAMS:-1,8,64}" \
    --prompt "${PIPELINE_PROMPT:-64}" --tokens "${PIPELINE_TOKENS:-128}" --label 20b-cuda-pipeline --out "$OUT" > "$OUT/pipeline-bench.log" 2>&1
  echo "pipeline bench rc $?"
  grep -vE '^\s|^[{}]' "$OUT/pipeline-bench.log" | tail -10
fi
