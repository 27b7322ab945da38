# Sourced by the GPU-host scripts (gpu-e2e.sh, gpu-profile.sh, gpu-prefill.sh) from the repository
# root, with $1 a log prefix: sets OUT (default ./gpu-logs, created) and BUILD (BUILD_DIR, default
# build-gpu), records the commit in $OUT/$1-commit.txt, puts the carried Node on the PATH, builds the
# addon for GPTOSS_CUDA_ARCHS (default 90a-real) into $BUILD, logs to $OUT/$1-build.log, and exports
# GPT_OSS_NODE_BINARY.
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
BUILD="${BUILD_DIR:-build-gpu}"
{ cat COMMIT 2>/dev/null || git log -1 --format="commit %H %s"; } | tee "$OUT/$1-commit.txt"
source scripts/gpu-host-setup.sh  # node, dist/, node_modules/ from .gpu (scripts/gpu-export.sh)
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
gpu_addon_t0=$(date +%s)
cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_CUDA_ARCHS="${GPTOSS_CUDA_ARCHS:-90a-real}" \
  "-DCMAKE_JS_INC=$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api" > "$OUT/$1-build.log" 2>&1 &&
  ninja -C "$BUILD" gpt_oss_node >> "$OUT/$1-build.log" 2>&1 || { tail -30 "$OUT/$1-build.log"; exit 1; }
echo "build: $(( $(date +%s) - gpu_addon_t0 )) s"
export GPT_OSS_NODE_BINARY="$BUILD/gpt_oss_node.node"
