#!/usr/bin/env bash
# End-to-end benchmark on the GPU host: builds the addon (sm_90a), writes a random checkpoint with
# the exact gpt-oss-20b shape (13.76 GB, the real loader reads it), then runs bench/e2e.mjs on it:
# load time, prefill 512 and 2048, decode at context 512 and 4096. Logs and JSON under $OUT.
#   carry: .gpu (node.xz), dist, node_modules/node-api-headers, node_modules/node-addon-api
#   env: GPTOSS_CUDA_ARCHS (default 90a-real), LAYERS (default: the preset's 24)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
BUILD="${BUILD_DIR:-build-gpu}"
if [[ -f .gpu/node.xz ]] && ! command -v node > /dev/null; then
  xz -dc .gpu/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
t0=$(date +%s)
cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_CUDA_ARCHS="${GPTOSS_CUDA_ARCHS:-90a-real}" \
  "-DCMAKE_JS_INC=$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api" > "$OUT/e2e-build.log" 2>&1 &&
  ninja -C "$BUILD" gpt_oss_node >> "$OUT/e2e-build.log" 2>&1 || { tail -30 "$OUT/e2e-build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
export GPT_OSS_NODE_BINARY="$PWD/$BUILD/gpt_oss_node.node"

CK=/tmp/gpt-oss-20b-random
t0=$(date +%s)
node scripts/make-checkpoint.mjs "$CK" --preset 20b ${LAYERS:+--layers $LAYERS} --quiet 2>&1 | tee "$OUT/e2e-checkpoint.log"
echo "checkpoint: $(( $(date +%s) - t0 )) s"
sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true

# Peak device memory over the runs, sampled every 100 ms.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$OUT/e2e-memory.log" 2>/dev/null &
SMI=$!
for ctx in 512 4096; do
  prefill=""; [[ $ctx == 512 ]] && prefill="512,2048"
  node bench/e2e.mjs "$CK" --device cuda --prefill "${prefill:-}" --decode 128 --context "$ctx" --label "20b-ctx$ctx" --out "$OUT" 2>&1 | tee -a "$OUT/e2e.log"
done
kill $SMI 2>/dev/null
echo "peak device memory: $(sort -n "$OUT/e2e-memory.log" | tail -1) MiB" | tee -a "$OUT/e2e.log"
