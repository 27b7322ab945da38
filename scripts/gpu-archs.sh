#!/usr/bin/env bash
# The capability table on a real GPU (GPU host, repository root): dispatch must follow what this
# binary compiled for the device, not the device's compute capability.
#   1. GPTOSS_CUDA_ARCHS=80 (sm_80 SASS + compute_80 PTX; on an sm_90 card the driver JIT-compiles the
#      PTX): gpu_check must pass, with the backend describing "image sm_80" (mma.sync, no FP8, no PDL).
#   2. GPTOSS_CUDA_ARCHS=80-real (no image an sm_90 card can run): creating the backend must fail with
#      the arch-list error, device 'cuda' must be that error, and 'auto' must fall back to the CPU.
# Logs in $OUT (arch-*.log); one status line each at the end.
#   env: ARCH_SETS (default "80 80-real"), CHECK_TIMEOUT (300)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
NODE_INC="-DCMAKE_JS_INC=$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api"
[[ -d node_modules/node-addon-api ]] || NODE_INC=""
declare -A STATUS
for archs in ${ARCH_SETS:-80 80-real}; do
  b="build-arch-$archs"
  log="$OUT/arch-$archs.log"
  t0=$(date +%s)
  if ! { cmake -G Ninja -S . -B "$b" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_GPU_TESTS=ON -DGPTOSS_CUDA_ARCHS="$archs" \
           ${NODE_INC:+"$NODE_INC"} && ninja -C "$b" gptoss_gpu_check ${NODE_INC:+gpt_oss_node}; } > "$log" 2>&1; then
    STATUS[$archs]="build FAILED"; tail -20 "$log"; continue
  fi
  echo "== $archs: built in $(( $(date +%s) - t0 )) s" | tee -a "$log"
  timeout "${CHECK_TIMEOUT:-300}" "$b/gptoss_gpu_check" >> "$log" 2>&1
  rc=$?
  summary=$(grep -E '^gpu_check: [0-9]+ cases' "$log" | tail -1)
  backend=$(grep -m1 -E 'cuda:0 ' "$log")
  if [[ "$archs" == *-real && "$archs" != *90* ]]; then
    # No image for this GPU: the check cannot create the backend; the error must name the arch list.
    if [[ $rc -ne 0 ]] && grep -q "has no kernels for it (CUDA architectures $archs)" "$log"; then
      STATUS[$archs]="refused as expected (rc $rc): $(grep -m1 -o 'cuda:0 ([^)]*): this build.*' "$log" | cut -c1-160)"
    else
      STATUS[$archs]="UNEXPECTED (rc $rc) $summary"
    fi
    if [[ -n "$NODE_INC" && -f dist/model.js ]] && command -v node > /dev/null; then
      GPT_OSS_NODE_BINARY="$b/gpt_oss_node.node" node -e '
        const m = require("./dist/model.js");
        try { m.resolveDevice("cuda"); console.log("cuda: NOT REFUSED"); } catch (e) { console.log("cuda: refused: " + e.message); }
        console.log("auto: " + JSON.stringify(m.resolveDevice("auto")));' >> "$log" 2>&1
      grep -E "^(cuda|auto):" "$log"
    fi
  else
    STATUS[$archs]="$summary (rc $rc); backend: ${backend:0:200}"
  fi
done
echo
for k in "${!STATUS[@]}"; do echo "arch set $k: ${STATUS[$k]}"; done
