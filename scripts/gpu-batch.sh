#!/usr/bin/env bash
# The CUDA batched step on the GPU host (issue 11): the equivalence check of the batched step against
# per-sequence Sessions and the CPU (scripts/gpu-batch-check.mjs), compute-sanitizer memcheck on its
# quick schedule, and the serving benchmark (bench/serve-load.mjs) on the synthetic 20b shape: engine
# streams, TTFT of a 2000-token prompt, the delay a 4000-token prompt adds to 32 decoding streams, and
# the same streams through real HTTP. Logs and JSON land in $OUT.
#   Uses $GPT_OSS_NODE_BINARY when it names a built addon, else builds one (scripts/gpu-addon.sh).
#   Expected durations on an H200 host (estimates, never run): check 60-90 s (synthetic models on the host
#   CPU included), memcheck 60-150 s, engine bench 90-150 s (the 20b weights generated in ~30 s), HTTP 60-100 s;
#   each part has its own timeout (150 + 120 + 200 + 120 s: the whole stays under 10 minutes).
#   env: SKIP_BATCH_CHECK=1, SKIP_BATCH_SANITIZER=1, SKIP_BATCH_BENCH=1, SKIP_BATCH_HTTP=1,
#        BATCH_STREAMS (default 1,8,32,64,128), BATCH_TOKENS (default 128), BATCH_PROMPT (default 64)
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${GPT_OSS_NODE_BINARY:-}" && -f "${GPT_OSS_NODE_BINARY}" ]]; then
  OUT="${OUT:-$PWD/gpu-logs}"
  mkdir -p "$OUT"
  [[ -d .gpu/dist && ! -f dist/model.js ]] && cp -r .gpu/dist dist
else
  source scripts/gpu-addon.sh batch
fi
STREAMS="${BATCH_STREAMS:-1,8,32,64,128}"
TOKENS="${BATCH_TOKENS:-128}"
PROMPT="${BATCH_PROMPT:-64}"
if [[ -z "${SKIP_BATCH_CHECK:-}" ]]; then
  timeout 150 node scripts/gpu-batch-check.mjs > "$OUT/batch-check.log" 2>&1
  echo "batch check rc $?"
  cat "$OUT/batch-check.log" | tail -20
fi
if [[ -z "${SKIP_BATCH_SANITIZER:-}" ]] && command -v compute-sanitizer > /dev/null; then
  timeout "${SANITIZER_TIMEOUT:-120}" compute-sanitizer --tool memcheck --print-limit 10 node scripts/gpu-batch-check.mjs --quick > "$OUT/batch-memcheck.log" 2>&1
  echo "batch memcheck rc $? $(grep -E 'ERROR SUMMARY' "$OUT/batch-memcheck.log" | tail -1) $(grep -E 'gpu-batch-check:' "$OUT/batch-memcheck.log" | tail -1)"
fi
if [[ -z "${SKIP_BATCH_BENCH:-}" ]]; then
  timeout 200 node bench/serve-load.mjs --synthetic 20b --device cuda --backend native --streams "$STREAMS" --prompt "$PROMPT" --tokens "$TOKENS" \
    --ttft-prompt 2000 --prefix-prompt 2000 --delay-prompt 4000 --delay-streams 32 --label 20b-cuda --out "$OUT" > "$OUT/batch-bench.log" 2>&1
  echo "batch bench rc $?"
  grep -vE '^\s|^[{}]' "$OUT/batch-bench.log" | tail -12
fi
if [[ -z "${SKIP_BATCH_HTTP:-}" ]]; then
  timeout 120 node bench/serve-load.mjs --synthetic 20b --device cuda --backend native --http --streams "${BATCH_HTTP_STREAMS:-1,8,64}" --prompt "$PROMPT" \
    --tokens "$TOKENS" --ttft-prompt 2000 --label 20b-cuda --out "$OUT" > "$OUT/batch-http.log" 2>&1
  echo "batch http rc $?"
  grep -vE '^\s|^[{}]' "$OUT/batch-http.log" | tail -8
fi
