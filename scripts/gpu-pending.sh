#!/usr/bin/env bash
# The GPU checks and measurements that earlier sessions compiled but could not run (refused device starts),
# in two device calls of < 10 minutes each on prebuilt binaries, so no device time goes to compiling.
#   Local side, at a committed HEAD: bash scripts/gpu-export.sh (.gpu/dist, .gpu/node_modules, .gpu/node.xz; the
#   tree itself travels); build sm_90a here (cmake -G Ninja -B build-gpu -DGPTOSS_GPU_TESTS=ON
#   -DGPTOSS_CUDA_ARCHS=90a-real ...; ninja gpt_oss_node gptoss_gpu_check gptoss_gpu_bench) and `xz` the three
#   into .gpu/bin/ (with the commit they were built from in .gpu/bin/COMMIT).
#   Device side, carry [".gpu"]: PART=1 OUT=$OUT bash scripts/gpu-pending.sh   (then PART=2)
# PART 1 (~6-8 min): gptoss_gpu_check, full shapes (every op vs the CPU backend, fresh random data), then the
#   streaming MoE of a decode batch against the GEMM tile (scripts/gpu-moe-batch-ab.sh, 24 layers only).
# PART 2 (~5-8 min): the large prefill steps' equivalence (scripts/gpu-batch-check.mjs --large: createEngine's
#   maxPrefillTokens up to 4,096), TTFT of a 2,000-token prompt and the 4,000-token prompt's delay to 32
#   decoding streams with --max-prefill-tokens 4096 (bench/serve-load.mjs), and engine streams 64 / 128 with
#   the GEMM tile and with GPTOSS_CUDA_MOE_BATCH=stream.
# PART 4 (~5-8 min): the streaming MoE as Hopper's default (ca5eada): the full gpu_check, gpu-batch-check,
#   the model checks, compute-sanitizer memcheck and racecheck on --moe-stream, serve-load 1 / 64 / 128
#   streams plain and pipelined.
# PART 3 (~2-4 min): gptoss_gpu_check --moe-stream, the streaming MoE kernel's SASS and Nsight Compute's full
#   set (with source counters) on one layer's gate_up and down at 64 streams; gptoss_gpu_bench --read-probe
#   (the DRAM ceiling of the kernels' access pattern: 128 rows x 64 B a stage against contiguous stages),
#   gptoss_gpu_bench --moe-batch, and bench/batch.mjs 24 layers at 32-128 streams: the GEMM tile forced, the
#   default (the streaming kernels on Hopper, 3 stages) and stream-s5 (GPTOSS_CUDA_MOE_STREAM_STAGES=5). Logs and the ncu report come
#   back as one $OUT/part3.tgz (the device tool returns a few files only).
# PART 6 (~4-8 min): the streaming MoE on the decode layout (GPTOSS_CUDA_MOE_DECODE=mma-relaid) and PART 4's
#   essentials: the full gptoss_gpu_check (with the decode-layout and scale > 128 stream cases), gptoss_gpu_bench
#   --moe-batch (a "stream-relaid" row; MOE_NS), bench/batch.mjs 24 layers default vs mma-relaid, gpu-batch-check
#   both ways, then while time is left serve-load, memcheck, the relaid model checks and ncu of the relaid kernel.
# PART 7 (~3-5 min): per-kernel GPU time of a batched decode step (scripts/gpu-step-profile.sh, ncu).
# PART 8 (~6-8 min): split-K of the dense wgmma GEMMs (gpu_check --gemm-splitk, the full gpu_check, gpu_bench
#   --dense-batch), the streaming MoE's templated loop and wide kernel (--moe-batch), bench/batch.mjs with split-K,
#   without it, and with the wide MoE, gpu-batch-check, then while time is left a step profile, memcheck and the
#   streaming MoE's stall reasons.
# PART 9 (~4-6 min): the streaming MoE's K loop without per-stage address work (15th session): gpu_check
#   --moe-stream and the full gpu_check, gpu_bench --moe-batch against the binary of the commit before
#   (.gpu/bin/gptoss_gpu_bench.base, when carried), --dense-batch (split-K clusters resident), the 24-layer step,
#   gpu-batch-check, then while time is left memcheck and racecheck on --moe-stream and a step profile.
# Predictions: bench/RESULTS.md, "The streaming MoE of a decode batch", "maxPrefillTokens" and (PART 6)
#   "Thirteenth session".
# PART 10 (~5-7 min): the streaming MoE's TMA kernel (16th session): gpu_check --moe-stream, the kernel A/B in one
#   binary (GPTOSS_CUDA_MOE_STREAM_TMA=0|1), the 24-layer step both ways, the full gpu_check, gpu-batch-check, then
#   memcheck / racecheck / synccheck and a step profile while time is left. Predictions: bench/RESULTS.md,
#   "Sixteenth session".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
PART="${PART:-1}"
BIN=.gpu/bin
source scripts/gpu-host-setup.sh
echo "tree $(git log -1 --format=%h 2>/dev/null), binaries $(cat "$BIN/COMMIT" 2>/dev/null), node $(node --version)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
t0=$(date +%s)

if [[ $PART == 1 ]]; then
  timeout 200 build-gpu/gptoss_gpu_check > "$OUT/check.log" 2>&1
  echo "gpu_check rc $? $(grep -E '^gpu_check:' "$OUT/check.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
  grep -E "^FAIL" "$OUT/check.log" | head -20
  MOE_BATCH_LAYERS="${MOE_BATCH_LAYERS:-24}" OUT="$OUT" BUILD_DIR=build-gpu timeout 420 bash scripts/gpu-moe-batch-ab.sh
elif [[ $PART == 3 ]]; then
  # the streaming MoE's check alone, then where its time goes: ncu's full set on one layer's gate_up and down
  # kernels of a 64-stream step (4-layer 20b cut), and the kernel's SASS opcode counts
  timeout 100 build-gpu/gptoss_gpu_check --moe-stream > "$OUT/check-moe-stream.log" 2>&1
  echo "gpu_check --moe-stream rc $? $(grep -E '^gpu_check:' "$OUT/check-moe-stream.log" | tail -1)"
  grep -E "^(PASS|FAIL)" "$OUT/check-moe-stream.log" | cut -c1-160
  timeout 60 build-gpu/gptoss_gpu_bench --read-probe > "$OUT/read-probe.log" 2>&1
  echo "read probe rc $?"; grep -E "^ceiling|^\|" "$OUT/read-probe.log"
  timeout 150 build-gpu/gptoss_gpu_bench --moe-batch > "$OUT/moe-batch.log" 2>&1
  echo "gpu_bench --moe-batch rc $?"; grep -E "graph" "$OUT/moe-batch.log"
  for v in gemm default stream-s5; do
    env $([[ $v == gemm ]] && echo GPTOSS_CUDA_MOE_BATCH=gemm) $([[ $v == stream-s5 ]] && echo GPTOSS_CUDA_MOE_BATCH=stream GPTOSS_CUDA_MOE_STREAM_STAGES=5) timeout 100 node bench/batch.mjs \
      --synthetic 20b --layers 24 --device cuda --context 128 --decode 16 --streams 32,64,96,128 --out "$OUT" > "$OUT/e2e-$v.log" 2>&1
    echo "batch.mjs 24 layers, MoE $v: rc $?"; grep -E "^  batch|^batch" "$OUT/e2e-$v.log"
  done
  if command -v cuobjdump > /dev/null; then
    cuobjdump -sass build-gpu/gptoss_gpu_bench 2>/dev/null | awk '/Function : .*moe_stream_kernel/{on=1} /Function : /&&!/moe_stream_kernel/{on=0} on' > "$OUT/moe-stream.sass"
    echo "SASS: $(grep -c 'Function :' "$OUT/moe-stream.sass") functions, $(wc -l < "$OUT/moe-stream.sass") lines"
  fi
  if command -v ncu > /dev/null; then
    GPTOSS_CUDA_MOE_BATCH=stream GPTOSS_CUDA_MOE_STREAM_STAGES=${NCU_STAGES:-3} timeout 240 ncu --clock-control none --graph-profiling node -k regex:moe_stream_kernel \
      --launch-skip 24 --launch-count 2 --set full --import-source yes -o /tmp/moe-stream node bench/batch.mjs --synthetic 20b \
      --layers 4 --device cuda --context 128 --streams 64 --decode 3 --out /tmp > "$OUT/ncu-moe-stream.log" 2>&1
    echo "ncu rc $?"
    ncu -i /tmp/moe-stream.ncu-rep --page details > "$OUT/ncu-moe-stream-details.txt" 2>&1
    ncu -i /tmp/moe-stream.ncu-rep --page raw --csv > "$OUT/ncu-moe-stream-raw.csv" 2>&1
    ncu -i /tmp/moe-stream.ncu-rep --page source --csv --print-source sass > "$OUT/ncu-moe-stream-source.csv" 2>&1
    grep -E "moe_stream_kernel|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|L2 Hit Rate|Compute \(SM\)|Issue Slots|Warp Cycles Per Issued|Registers Per|Executed Ipc|No Eligible" "$OUT/ncu-moe-stream-details.txt" | head -40
    grep -iE "stall|spends" "$OUT/ncu-moe-stream-details.txt" | cut -c1-300 | head -12
  fi
elif [[ $PART == 7 ]]; then
  # where a batched decode step's GPU time goes, per kernel (scripts/gpu-step-profile.sh): 64 and 128 streams,
  # 2 and 4 layers (the difference splits per-layer kernels from the LM head / sampling / embedding)
  for cfg in "64 2" "64 4" "128 2"; do
    set -- $cfg
    STREAMS=$1 LAYERS=$2 OUT="$OUT" timeout 200 bash scripts/gpu-step-profile.sh > "$OUT/step-profile-s$1-l$2.txt" 2>&1
    echo "step profile, $1 streams, $2 layers: rc $? ($(( $(date +%s) - t0 )) s)"; head -22 "$OUT/step-profile-s$1-l$2.txt" | cut -c1-150
  done
elif [[ $PART == 6 ]]; then
  # the streaming MoE on the decode layout (GPTOSS_CUDA_MOE_DECODE=mma-relaid, 13th session) and PART 4's
  # essentials in one call, most important first; the later steps only while time is left (*_BEFORE_S)
  timeout 120 build-gpu/gptoss_gpu_check > "$OUT/check.log" 2>&1
  echo "gpu_check rc $? $(grep -E '^gpu_check:' "$OUT/check.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
  grep -E "^FAIL" "$OUT/check.log" | head; grep -E "decode layout|scales 1" "$OUT/check.log" | cut -c1-170
  GPTOSS_BENCH_MOE_PATHS=gemm,stream,stream-relaid,stream-relaid-w32 GPTOSS_BENCH_MOE_NS=${MOE_NS:-16,64,128} \
    timeout 100 build-gpu/gptoss_gpu_bench --moe-batch > "$OUT/moe-batch.log" 2>&1
  echo "gpu_bench --moe-batch rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "prepare_experts|graph .*r2" "$OUT/moe-batch.log" | grep -v " decode " | cut -c1-150
  for v in default relaid; do
    env $([[ $v == relaid ]] && echo GPTOSS_CUDA_MOE_DECODE=mma-relaid) timeout 80 node bench/batch.mjs \
      --synthetic 20b --layers 24 --device cuda --context 128 --decode 16 --streams ${E2E_STREAMS:-1,64,128} --out "$OUT" > "$OUT/e2e-$v.log" 2>&1
    echo "batch.mjs 24 layers, $v: rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^batch|^session" "$OUT/e2e-$v.log" | cut -c1-150
  done
  for v in default relaid; do
    env $([[ $v == relaid ]] && echo GPTOSS_CUDA_MOE_DECODE=mma-relaid) timeout 100 node scripts/gpu-batch-check.mjs > "$OUT/batch-check-$v.log" 2>&1
    echo "batch check, $v: rc $? ($(( $(date +%s) - t0 )) s)"; grep -vE "^\s*$" "$OUT/batch-check-$v.log" | tail -4
  done
  if (( $(date +%s) - t0 < ${SERVE_BEFORE_S:-330} )); then
    timeout 90 node bench/serve-load.mjs --synthetic 20b --device cuda --streams 64,128 --prompt 64 --tokens 128 \
      --label 20b-default --out "$OUT" > "$OUT/serve.log" 2>&1
    echo "serve-load rc $? ($(( $(date +%s) - t0 )) s)"; grep -vE '^\s|^[{}]' "$OUT/serve.log" | tail -5
  fi
  if (( $(date +%s) - t0 < ${SANITIZE_BEFORE_S:-400} )) && command -v compute-sanitizer > /dev/null; then
    timeout 60 compute-sanitizer --tool memcheck --print-limit 10 build-gpu/gptoss_gpu_check --moe-stream > "$OUT/memcheck-moe-stream.log" 2>&1
    echo "memcheck --moe-stream rc $? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck-moe-stream.log" | tail -1)"
  fi
  # with time left: the model checks with every layer re-laid, and the relaid kernel's instruction mix (ncu,
  # gate_up + down at 64 streams)
  if (( $(date +%s) - t0 < ${MODEL_BEFORE_S:-430} )); then
    GPTOSS_CUDA_MOE_DECODE=mma-relaid timeout 120 node scripts/gpu-model-check.mjs > "$OUT/model-check-relaid.log" 2>&1
    echo "model check, mma-relaid: rc $? ($(( $(date +%s) - t0 )) s)"; grep -iE "fail|error|decode layout" "$OUT/model-check-relaid.log" | head -5
  fi
  if (( $(date +%s) - t0 < ${NCU_BEFORE_S:-450} )) && command -v ncu > /dev/null; then
    GPTOSS_CUDA_MOE_DECODE=mma-relaid timeout 120 ncu --clock-control none --graph-profiling node -k regex:moe_stream_kernel \
      --launch-skip 24 --launch-count 2 --set full -o /tmp/moe-relaid node bench/batch.mjs --synthetic 20b \
      --layers 4 --device cuda --context 128 --streams 64 --decode 3 --out /tmp > "$OUT/ncu-relaid.log" 2>&1
    echo "ncu rc $? ($(( $(date +%s) - t0 )) s)"
    ncu -i /tmp/moe-relaid.ncu-rep --page details > "$OUT/ncu-relaid-details.txt" 2>&1
    grep -E "moe_stream_kernel|Duration|DRAM Throughput|Issue Slots|Executed Ipc|Registers Per|Achieved Occupancy" "$OUT/ncu-relaid-details.txt" | head -20
  fi
elif [[ $PART == 8 ]]; then
  # split-K of the dense wgmma GEMMs and the streaming MoE's templated loop and wide kernel (14th session):
  # correctness first, then the kernel A/Bs and the end-to-end step; the later steps only while time is left
  timeout 60 build-gpu/gptoss_gpu_check --gemm-splitk > "$OUT/check-splitk.log" 2>&1
  echo "gpu_check --gemm-splitk rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^(PASS|FAIL)" "$OUT/check-splitk.log" | cut -c1-170
  timeout 150 build-gpu/gptoss_gpu_check > "$OUT/check.log" 2>&1
  echo "gpu_check rc $? $(grep -E '^gpu_check:' "$OUT/check.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
  grep -E "^FAIL" "$OUT/check.log" | head; grep -E "wide" "$OUT/check.log" | cut -c1-170
  GPTOSS_BENCH_MOE_PATHS=${MOE_PATHS:-stream-relaid,stream-relaid-w32} GPTOSS_BENCH_MOE_NS=${MOE_NS:-16,64,128} \
    timeout 100 build-gpu/gptoss_gpu_bench --moe-batch > "$OUT/moe-batch.log" 2>&1
  echo "gpu_bench --moe-batch rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "graph .*r2" "$OUT/moe-batch.log" | cut -c1-150
  timeout 120 build-gpu/gptoss_gpu_bench --dense-batch > "$OUT/dense-batch.log" 2>&1
  echo "gpu_bench --dense-batch rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^dense.* r2" "$OUT/dense-batch.log" | cut -c1-150
  e2e() {  # $1: auto (the defaults), wide (+ GPTOSS_CUDA_MOE_STREAM_TOKENS=32), whole (GPTOSS_CUDA_GEMM_SPLITK=1)
    env $([[ $1 == whole ]] && echo GPTOSS_CUDA_GEMM_SPLITK=1) $([[ $1 == wide ]] && echo GPTOSS_CUDA_MOE_STREAM_TOKENS=32) \
      timeout 80 node bench/batch.mjs --synthetic 20b --layers 24 --device cuda --context 128 --decode 16 \
      --streams ${E2E_STREAMS:-1,64,128} --out "$OUT" > "$OUT/e2e-$1.log" 2>&1
    echo "batch.mjs 24 layers, $1: rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^batch|^session" "$OUT/e2e-$1.log" | cut -c1-150
  }
  e2e auto
  timeout 100 node scripts/gpu-batch-check.mjs > "$OUT/batch-check.log" 2>&1
  echo "batch check: rc $? ($(( $(date +%s) - t0 )) s)"; grep -vE "^\s*$" "$OUT/batch-check.log" | tail -4
  for v in ${E2E_MORE:-wide whole}; do
    (( $(date +%s) - t0 < ${MORE_BEFORE_S:-300} )) && e2e "$v"
  done
  if (( $(date +%s) - t0 < ${SANITIZE_BEFORE_S:-360} )) && command -v compute-sanitizer > /dev/null; then
    timeout 60 compute-sanitizer --tool memcheck --print-limit 10 build-gpu/gptoss_gpu_check --gemm-splitk > "$OUT/memcheck-splitk.log" 2>&1
    echo "memcheck --gemm-splitk rc $? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck-splitk.log" | tail -1)"
  fi
  if (( $(date +%s) - t0 < ${PROFILE_BEFORE_S:-380} )) && command -v ncu > /dev/null; then
    STREAMS=64 LAYERS=2 OUT="$OUT" timeout 100 bash scripts/gpu-step-profile.sh > "$OUT/step-profile-s64-l2.txt" 2>&1
    echo "step profile, 64 streams, 2 layers: rc $? ($(( $(date +%s) - t0 )) s)"; head -14 "$OUT/step-profile-s64-l2.txt" | cut -c1-150
  fi
  if command -v cuobjdump > /dev/null; then  # the kernels' SASS, for counting the loop's instructions here
    cuobjdump -sass build-gpu/gpt_oss_node.node 2>/dev/null | awk '/Function : .*(moe_stream_kernel|gemm_wgmma_kernel)/{p=1} /Function : /{if ($0 !~ /moe_stream_kernel|gemm_wgmma_kernel/) p=0} p' | xz -T2 > "$OUT/sass.txt.xz"
  fi
elif [[ $PART == 9 ]]; then
  timeout 60 build-gpu/gptoss_gpu_check --moe-stream > "$OUT/check-moe-stream.log" 2>&1
  echo "gpu_check --moe-stream rc $? $(grep -E '^gpu_check:' "$OUT/check-moe-stream.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
  grep -E "^FAIL" "$OUT/check-moe-stream.log" | head
  timeout 150 build-gpu/gptoss_gpu_check > "$OUT/check.log" 2>&1
  echo "gpu_check rc $? $(grep -E '^gpu_check:' "$OUT/check.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
  grep -E "^FAIL" "$OUT/check.log" | head
  for b in base new; do  # the kernel A/B: the commit before this session's loop change, then this build
    bin=build-gpu/gptoss_gpu_bench; [[ $b == base ]] && bin=build-gpu/gptoss_gpu_bench.base
    [[ -x $bin ]] || continue
    GPTOSS_BENCH_MOE_PATHS=${MOE_PATHS:-stream-relaid,stream} GPTOSS_BENCH_MOE_NS=${MOE_NS:-16,64,128} \
      timeout 100 $bin --moe-batch > "$OUT/moe-batch-$b.log" 2>&1
    echo "gpu_bench --moe-batch ($b) rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "graph .*r2" "$OUT/moe-batch-$b.log" | cut -c1-150
  done
  timeout 120 build-gpu/gptoss_gpu_bench --dense-batch > "$OUT/dense-batch.log" 2>&1
  echo "gpu_bench --dense-batch rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^dense.* r2|split_clusters" "$OUT/dense-batch.log" | cut -c1-150
  timeout 80 node bench/batch.mjs --synthetic 20b --layers 24 --device cuda --context 128 --decode 16 \
    --streams ${E2E_STREAMS:-1,64,128} --out "$OUT" > "$OUT/e2e.log" 2>&1
  echo "batch.mjs 24 layers: rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^batch|^session" "$OUT/e2e.log" | cut -c1-150
  timeout 100 node scripts/gpu-batch-check.mjs > "$OUT/batch-check.log" 2>&1
  echo "batch check: rc $? ($(( $(date +%s) - t0 )) s)"; grep -vE "^\s*$" "$OUT/batch-check.log" | tail -4
  if (( $(date +%s) - t0 < ${SANITIZE_BEFORE_S:-300} )) && command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck; do
      timeout 60 compute-sanitizer --tool $tool --print-limit 10 build-gpu/gptoss_gpu_check --moe-stream > "$OUT/$tool-moe-stream.log" 2>&1
      echo "$tool --moe-stream rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool-moe-stream.log" | tail -1)"
    done
  fi
  if (( $(date +%s) - t0 < ${PROFILE_BEFORE_S:-380} )) && command -v ncu > /dev/null; then
    STREAMS=64 LAYERS=2 OUT="$OUT" timeout 100 bash scripts/gpu-step-profile.sh > "$OUT/step-profile-s64-l2.txt" 2>&1
    echo "step profile, 64 streams, 2 layers: rc $? ($(( $(date +%s) - t0 )) s)"; head -20 "$OUT/step-profile-s64-l2.txt" | cut -c1-150
  fi
elif [[ $PART == 10 ]]; then
  # the streaming MoE's TMA kernel (16th session): its check first (a lost byte count would hang: timeouts), the
  # kernel A/B in one binary (GPTOSS_CUDA_MOE_STREAM_TMA=0: the cp.async ring), the 24-layer step both ways, the
  # full check, the batched step's check, then memcheck / racecheck / synccheck on the stream cases and ncu.
  timeout 90 build-gpu/gptoss_gpu_check --moe-stream > "$OUT/check-moe-stream.log" 2>&1
  echo "gpu_check --moe-stream rc $? $(grep -E '^gpu_check:' "$OUT/check-moe-stream.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
  grep -E "^FAIL" "$OUT/check-moe-stream.log" | head
  grep -E "rows 8 an expert \(64|rows 16 an expert \(128" "$OUT/check-moe-stream.log" | head -4 | cut -c1-200
  for tma in 0 1; do
    GPTOSS_CUDA_MOE_STREAM_TMA=$tma GPTOSS_BENCH_MOE_PATHS=${MOE_PATHS:-stream-relaid-auto,stream-relaid,stream-relaid-w32} \
      GPTOSS_BENCH_MOE_NS=${MOE_NS:-16,64,128} timeout 100 build-gpu/gptoss_gpu_bench --moe-batch > "$OUT/moe-batch-tma$tma.log" 2>&1
    echo "gpu_bench --moe-batch (TMA=$tma) rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "graph .*r2" "$OUT/moe-batch-tma$tma.log" | cut -c1-150
  done
  for tma in 0 1; do
    GPTOSS_CUDA_MOE_STREAM_TMA=$tma timeout 80 node bench/batch.mjs --synthetic 20b --layers 24 --device cuda --context 128 --decode 16 \
      --streams ${E2E_STREAMS:-1,64,128} --out "$OUT" > "$OUT/e2e-tma$tma.log" 2>&1
    echo "batch.mjs 24 layers (TMA=$tma): rc $? ($(( $(date +%s) - t0 )) s)"; grep -E "^batch|^session" "$OUT/e2e-tma$tma.log" | cut -c1-150
  done
  if [[ -z "${SKIP_FULL:-}" ]]; then
    timeout 150 build-gpu/gptoss_gpu_check > "$OUT/check.log" 2>&1
    echo "gpu_check rc $? $(grep -E '^gpu_check:' "$OUT/check.log" | tail -1) ($(( $(date +%s) - t0 )) s)"
    grep -E "^FAIL" "$OUT/check.log" | head
    timeout 100 node scripts/gpu-batch-check.mjs > "$OUT/batch-check.log" 2>&1
    echo "batch check: rc $? ($(( $(date +%s) - t0 )) s)"; grep -vE "^\s*$" "$OUT/batch-check.log" | tail -4
  fi
  if (( $(date +%s) - t0 < ${SANITIZE_BEFORE_S:-330} )) && command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck synccheck; do
      timeout 75 compute-sanitizer --tool $tool --print-limit 10 build-gpu/gptoss_gpu_check --moe-stream --quick > "$OUT/$tool-moe-stream.log" 2>&1
      echo "$tool --moe-stream rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool-moe-stream.log" | tail -1)"
    done
  fi
  if (( $(date +%s) - t0 < ${PROFILE_BEFORE_S:-420} )) && command -v ncu > /dev/null; then
    STREAMS=64 LAYERS=2 OUT="$OUT" timeout 100 bash scripts/gpu-step-profile.sh > "$OUT/step-profile-s64-l2.txt" 2>&1
    echo "step profile, 64 streams, 2 layers: rc $? ($(( $(date +%s) - t0 )) s)"; head -20 "$OUT/step-profile-s64-l2.txt" | cut -c1-150
  fi
elif [[ $PART == 4 ]]; then
  # the streaming MoE as Hopper's default: the full check, the batched step against CUDA Sessions and the CPU,
  # the model checks, memcheck and racecheck on the stream cases, then serving at 1 / 64 / 128 streams
  timeout 200 build-gpu/gptoss_gpu_check > "$OUT/check.log" 2>&1
  echo "gpu_check rc $? $(grep -E '^gpu_check:' "$OUT/check.log" | tail -1)"; grep -E "^FAIL" "$OUT/check.log" | head
  timeout 170 node scripts/gpu-batch-check.mjs > "$OUT/batch-check.log" 2>&1
  echo "batch check rc $?"; grep -vE "^\s*$" "$OUT/batch-check.log" | tail -14
  if [[ -z "${SKIP_MODEL:-}" ]]; then
    timeout 120 node scripts/gpu-model-check.mjs > "$OUT/model-check.log" 2>&1
    echo "model check rc $? $(grep -cE '^ok|PASS' "$OUT/model-check.log") ok lines"; grep -iE "fail|error" "$OUT/model-check.log" | head -5
  fi
  timeout 150 node bench/serve-load.mjs --synthetic 20b --device cuda --streams "${SERVE_STREAMS:-1,64,128}" --prompt 64 --tokens 128 \
    --pipeline "${SERVE_PIPELINE:-both}" --label 20b-default --out "$OUT" > "$OUT/serve.log" 2>&1
  echo "serve-load rc $?"; grep -vE '^\s|^[{}]' "$OUT/serve.log" | tail -9
  if [[ -z "${SKIP_SANITIZER:-}" ]] && command -v compute-sanitizer > /dev/null; then
    for tool in ${SANITIZERS:-memcheck racecheck}; do
      timeout 60 compute-sanitizer --tool $tool --print-limit 10 build-gpu/gptoss_gpu_check --moe-stream > "$OUT/$tool-moe-stream.log" 2>&1
      echo "$tool --moe-stream rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool-moe-stream.log" | tail -1)"
    done
  fi
else
  timeout 170 node scripts/gpu-batch-check.mjs --large > "$OUT/batch-large.log" 2>&1
  echo "batch check --large rc $? ($(( $(date +%s) - t0 )) s)"
  tail -12 "$OUT/batch-large.log"
  timeout 200 node bench/serve-load.mjs --synthetic 20b --device cuda --streams 1 --prompt 64 --tokens 64 \
    --ttft-prompt 2000 --delay-prompt 4000 --delay-streams 32 --max-prefill-tokens 4096 --label 20b-prefill4096 \
    --out "$OUT" > "$OUT/ttft.log" 2>&1
  echo "serve-load TTFT rc $? ($(( $(date +%s) - t0 )) s)"
  grep -vE '^\s|^[{}]' "$OUT/ttft.log" | tail -10
  for path in gemm stream; do
    GPTOSS_CUDA_MOE_BATCH=$path timeout 150 node bench/serve-load.mjs --synthetic 20b --device cuda --streams 64,128 \
      --prompt 64 --tokens 128 --label "20b-moe-$path" --out "$OUT" > "$OUT/streams-$path.log" 2>&1
    echo "serve-load streams, MoE $path: rc $? ($(( $(date +%s) - t0 )) s)"
    grep -vE '^\s|^[{}]' "$OUT/streams-$path.log" | tail -6
  done
fi
echo "gpu-pending part $PART: $(( $(date +%s) - t0 )) s"
# one archive back (the device tool returns a few files only)
(cd "$OUT" && tar czf "/tmp/part$PART.tgz" . 2>/dev/null && find . -mindepth 1 -delete && mv "/tmp/part$PART.tgz" .)
