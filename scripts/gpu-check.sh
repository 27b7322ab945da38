#!/usr/bin/env bash
# GPU check, run on the GPU host (the device tool's machine) from the repository root:
#   1. configure + build the CUDA backend (sm_90a only, for speed) with the native check and bench;
#   2. the native check (every op, CUDA vs the CPU backend, fresh random data);
#   3. compute-sanitizer memcheck and racecheck on a reduced check run;
#   4. the kernel benchmark (bench/gpu-kernels.cpp) against ceilings measured in the same run;
#   5. if node, dist/ and the node-addon-api headers came along: build the addon and run the
#      model-level checks (scripts/gpu-model-check.mjs: tiny-a on CUDA, then a 20b-shape checkpoint).
# Logs go to $OUT (or ./gpu-logs); a short summary table is printed last.
#   env: GPTOSS_CUDA_ARCHS (default 90a-real), SKIP_SANITIZER=1, SKIP_BENCH=1, SKIP_NODE=1, SKIP_SMEM99=1, BENCH_QUICK=1
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
BUILD="${BUILD_DIR:-build-gpu}"
ARCHS="${GPTOSS_CUDA_ARCHS:-90a-real}"
declare -A STATUS

step() { echo; echo "=== $* ==="; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | tee "$OUT/gpu.txt"
git log -1 --format='commit %H %s' 2>/dev/null | tee -a "$OUT/gpu.txt"

step "build ($ARCHS)"
NODE_INC=""
if [[ -z "${SKIP_NODE:-}" && -d node_modules/node-addon-api && -d node_modules/node-api-headers ]]; then
  NODE_INC="-DCMAKE_JS_INC=$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api"
fi
t0=$(date +%s)
if cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGPTOSS_GPU_TESTS=ON -DGPTOSS_CUDA_ARCHS="$ARCHS" \
     ${NODE_INC:+"$NODE_INC"} > "$OUT/build.log" 2>&1 &&
   ninja -C "$BUILD" >> "$OUT/build.log" 2>&1; then
  STATUS[build]="ok ($(( $(date +%s) - t0 )) s)"
else
  STATUS[build]="FAILED"; tail -40 "$OUT/build.log"
fi
grep -E "warning|spill" "$OUT/build.log" | grep -v "^--" | head -20

if [[ -x "$BUILD/gptoss_gpu_check" ]]; then
  step "native check (full shapes)"
  timeout "${CHECK_TIMEOUT:-300}" "$BUILD/gptoss_gpu_check" 2>&1 | tee "$OUT/check.log"
  rc=$?
  STATUS[check]="$(grep -E '^gpu_check: [0-9]+ cases' "$OUT/check.log" | tail -1) (rc $rc)"
  # The GEMM tile choices of a 99 KB-a-block part (sm_86/89/120: no 128-row MXFP4 tile), on this GPU.
  if [[ -z "${SKIP_SMEM99:-}" ]]; then
    step "native check, tile choices of sm_86/89/120"
    GPTOSS_CUDA_SMEM_LIMIT=101376 timeout "${CHECK_TIMEOUT:-300}" "$BUILD/gptoss_gpu_check" > "$OUT/check-smem99.log" 2>&1
    rc=$?
    STATUS[check_smem99]="$(grep -E '^gpu_check: [0-9]+ cases' "$OUT/check-smem99.log" | tail -1) (rc $rc)"
  fi

  if [[ -z "${SKIP_SANITIZER:-}" ]] && command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck; do
      step "compute-sanitizer $tool (reduced check)"
      timeout "${SANITIZER_TIMEOUT:-240}" compute-sanitizer --tool "$tool" --print-limit 20 "$BUILD/gptoss_gpu_check" --quick > "$OUT/$tool.log" 2>&1
      rc=$?
      tail -4 "$OUT/$tool.log"
      STATUS[$tool]="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1) (rc $rc)"
    done
  fi
fi

if [[ -z "${SKIP_BENCH:-}" && -x "$BUILD/gptoss_gpu_bench" ]]; then
  step "kernel bench"
  GPTOSS_CUBLAS="${GPTOSS_CUBLAS:-$(find / -name 'libcublas.so.1[0-9]*' -path '*lib*' 2>/dev/null | head -1)}" \
    timeout "${BENCH_TIMEOUT:-300}" "$BUILD/gptoss_gpu_bench" ${BENCH_QUICK:+--quick} 2>&1 | tee "$OUT/bench.log"
  STATUS[bench]="rc $?"
fi

if [[ -n "${NCU:-}" && -x "$BUILD/gptoss_gpu_bench" ]] && command -v ncu > /dev/null; then
  step "ncu: decode kernels (${NCU_KERNELS:-moe_decode|attention_decode|gemv})"
  timeout 180 ncu --clock-control none --kernel-name "regex:${NCU_KERNELS:-moe_decode|attention_decode|gemv}" \
    --launch-skip 20 --launch-count 6 --section SpeedOfLight --section LaunchStats --section Occupancy \
    --section MemoryWorkloadAnalysis "$BUILD/gptoss_gpu_bench" --quick > "$OUT/ncu.log" 2>&1
  STATUS[ncu]="rc $? (ncu.log)"
  grep -E "^  [a-z_]+.*\(|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per" "$OUT/ncu.log" | head -60
fi

if [[ -z "${SKIP_NODE:-}" && -f "$BUILD/gpt_oss_node.node" && -f dist/model.js ]] && command -v node > /dev/null; then
  export GPT_OSS_NODE_BINARY="$PWD/$BUILD/gpt_oss_node.node"
  step "node model check: tiny-a on CUDA"
  node scripts/gpu-model-check.mjs 2>&1 | tee /tmp/model-tiny.log
  STATUS[model_tiny]="$(grep -E 'passed' /tmp/model-tiny.log | tail -1)"
  step "node model check: tiny-a on CUDA with an f32 KV cache (GPTOSS_CUDA_KV_CACHE=f32)"
  GPTOSS_CUDA_KV_CACHE=f32 GPTOSS_CHECK_DEEP=0 node scripts/gpu-model-check.mjs 2>&1 | tee /tmp/model-tiny-kvf32.log
  STATUS[model_tiny_kvf32]="$(grep -E 'passed' /tmp/model-tiny-kvf32.log | tail -1)"
  step "node model check: tiny-a on CUDA with the experts in the decode layout (GPTOSS_CUDA_MOE_DECODE=mma-relaid)"
  GPTOSS_CUDA_MOE_DECODE=mma-relaid GPTOSS_CHECK_DEEP=0 node scripts/gpu-model-check.mjs 2>&1 | tee /tmp/model-tiny-relaid.log
  STATUS[model_tiny_relaid]="$(grep -E 'passed' /tmp/model-tiny-relaid.log | tail -1)"
  if [[ -z "${SKIP_20B:-}" && -f scripts/make-checkpoint.mjs ]]; then
    step "node model check: 20b-shape random checkpoint (4 layers)"
    t1=$(date +%s)
    node scripts/make-checkpoint.mjs /tmp/ck20b --preset 20b --layers 4 --quiet > /tmp/model-20b.log 2>&1 &&
      echo "(checkpoint written in $(( $(date +%s) - t1 )) s)" | tee -a /tmp/model-20b.log &&
      timeout "${MODEL_TIMEOUT:-300}" node scripts/gpu-model-check.mjs /tmp/ck20b 2>&1 | tee -a /tmp/model-20b.log
    STATUS[model_20b]="$(grep -E 'passed' /tmp/model-20b.log | tail -1)"
  fi
  for f in /tmp/model-tiny.log /tmp/model-tiny-kvf32.log /tmp/model-tiny-relaid.log /tmp/model-20b.log; do
    [[ -f $f ]] && { echo "### $f"; cat "$f"; } >> "$OUT/model-check.log"
  done
else
  STATUS[node]="skipped (no node / dist / addon)"
fi

echo
echo "=== summary ($(head -2 "$OUT/gpu.txt" | tail -1 | cut -d, -f1)) ==="
printf '%-12s %s\n' "step" "result"
for k in build check check_smem99 memcheck racecheck bench ncu model_tiny model_tiny_kvf32 model_20b node; do
  [[ -n "${STATUS[$k]:-}" ]] && printf '%-12s %s\n' "$k" "${STATUS[$k]}"
done
if [[ -f "$OUT/check.log" ]]; then
  echo "-- check (worst rel L2 per op) --"
  awk '/^(PASS|FAIL)/ { op=$2; for (i=1;i<=NF;i++) if ($i=="rel_l2") v=$(i+1); if (!(op in w) || v+0 > w[op]+0) w[op]=v; if ($1=="FAIL") f[op]=1 }
       END { for (o in w) printf "  %-18s %s%s\n", o, w[o], (o in f) ? "  FAIL" : "" }' "$OUT/check.log" | sort
fi
[[ -f "$OUT/bench.log" ]] && { echo "-- bench --"; grep -E '^\|' "$OUT/bench.log"; }
