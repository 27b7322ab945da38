#!/usr/bin/env bash
# Everything a GPU session checks and measures, in one device call (device time is scarce): the
# native check and the tiny-a model checks (gpu-check.sh), the decode-kernel bench, end to end on the
# 20b checkpoint and synthetic 120b (gpu-e2e.sh, ending with bench/summary.mjs), then compute-sanitizer
# memcheck and racecheck on the reduced check. Everything lands in $OUT, packed as $OUT/all.tgz (the
# device tool returns a limited number of files).
#   From a dev machine: bash scripts/gpu-export.sh, then on the device, with carry [".gpu"]:
#     source scripts/gpu-host-setup.sh; OUT=$OUT bash scripts/gpu-all.sh   (from the repository root)
#   env: SKIP_E2E=1, SKIP_KV_AB=1 (gpu-kv-ab.sh), SKIP_RELAID=1 (gpu-moe-relaid-ab.sh), SKIP_GEMV=1 (gpu-gemv-ab.sh), SKIP_ATTN=1 (gpu-attn-ab.sh), SKIP_WGMMA=1 (gpu-wgmma-ab.sh), SKIP_MOE_BATCH=1 (gpu-moe-batch-ab.sh), SKIP_BLACKWELL=1 (ptx-blackwell.sh), SKIP_BATCH=1 (gpu-batch.sh, and its own SKIP_BATCH_* variables), SKIP_PIPELINE=1 (gpu-pipeline.sh),
#        SKIP_SANITIZER=1, MODELS (gpu-e2e.sh), BENCH_ARGS (default --decode; "" for every kernel),
#        SKIP_BF16_LOAD=1 (gpu-bf16-load.sh: the 20b fine-tuned checkpoint's load time),
#        BF16_EXPERTS=0 skips the bf16 expert step (loadModel's experts: 'bf16' on CUDA: compiled, first run
#        pending; its expected outcomes are in bench/RESULTS.md, "bf16 experts on CUDA")
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT"
cat COMMIT 2>/dev/null || git log -1 --format='%H %s' 2>/dev/null

SKIP_SANITIZER=1 SKIP_BENCH=1 SKIP_20B=1 OUT="$OUT" bash scripts/gpu-check.sh > "$OUT/check-all.log" 2>&1
grep -E "^(build|check|model)" "$OUT/check-all.log"
grep -E "FAIL" "$OUT/check.log" | head -20

if [[ -x build-gpu/gptoss_gpu_bench ]]; then
  build-gpu/gptoss_gpu_bench ${BENCH_ARGS---decode} > "$OUT/bench.log" 2>&1
  grep "^|" "$OUT/bench.log"
fi

[[ -z "${SKIP_E2E:-}" ]] && BUILD_DIR=build-gpu OUT="$OUT" bash scripts/gpu-e2e.sh 2>&1 | grep -vE "^\s*$" | tail -40

# bf16 experts on CUDA (issue 15; compiled, not yet run when this step was written): gpu_check's bf16 expert
# cases (both paths vs the CPU backend, fresh random data; memcheck on the reduced set), the model check on
# tiny-a-bf16 (vs transformers and the CPU), the kernel bench and 20b synthetic end to end with bf16 experts
# beside MXFP4 (~4 min in all).
# Predictions: bench/RESULTS.md "bf16 experts on CUDA". BF16_EXPERTS=0 skips it.
if [[ "${BF16_EXPERTS:-1}" != 0 && -x build-gpu/gptoss_gpu_check ]]; then
  echo "=== bf16 experts ==="
  timeout 300 build-gpu/gptoss_gpu_check --bf16-experts > "$OUT/check-bf16-experts.log" 2>&1
  echo "gpu_check --bf16-experts rc $? $(grep -E '^gpu_check:' "$OUT/check-bf16-experts.log")"
  grep -E "^FAIL" "$OUT/check-bf16-experts.log" | head -10
  if [[ -z "${SKIP_SANITIZER:-}" ]] && command -v compute-sanitizer > /dev/null; then
    timeout 120 compute-sanitizer --tool memcheck --print-limit 10 build-gpu/gptoss_gpu_check --bf16-experts --quick \
      > "$OUT/memcheck-bf16-experts.log" 2>&1
    echo "memcheck --bf16-experts --quick rc $? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck-bf16-experts.log" | tail -1)"
  fi
  if [[ -f build-gpu/gpt_oss_node.node && -f dist/model.js ]]; then
    GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node" GPTOSS_CHECK_BF16_EXPERTS=only timeout 120 \
      node scripts/gpu-model-check.mjs > "$OUT/model-check-bf16-experts.log" 2>&1
    echo "model check bf16 experts rc $?"; cat "$OUT/model-check-bf16-experts.log"
  fi
  timeout 180 build-gpu/gptoss_gpu_bench --bf16-experts > "$OUT/bench-bf16-experts.log" 2>&1
  grep "^|" "$OUT/bench-bf16-experts.log"
  if [[ -f build-gpu/gpt_oss_node.node && -f dist/model.js ]]; then
    for ex in mxfp4 bf16; do
      GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node" timeout 240 node bench/e2e.mjs --synthetic 20b --device cuda \
        --experts "$ex" --prefill 512,2048 --decode 128 --context 512 --label "experts-$ex" --out "$OUT" 2>&1 | tail -4
    done
  fi
fi

# issue 15: a fine-tuned 20b (bf16 experts, 40.6 GB) loaded with quantize-at-load: converted from the
# checkpoint-20b above, loaded cached (CPU) twice, cold once, onto CUDA once (gpu-bf16-load.sh, ~4-7 min,
# needs 42 GB of free disk; not yet run when written). Predictions: bench/RESULTS.md "bf16 20b load on the
# H200 host". SKIP_BF16_LOAD=1 skips it.
[[ -z "${SKIP_BF16_LOAD:-}" ]] && BUILD_DIR=build-gpu OUT="$OUT" timeout 900 bash scripts/gpu-bf16-load.sh 2>&1 |
  grep -E "^bf16 load|^  load|^  read|^cores|^bf16-checkpoint|decode" | tail -20

# the KV cache type's decode cost: f16 / bf16 / f32k-f16v alternately, f32 once, at 4096 and 8192
# (gpu-kv-ab.sh, ~1.5 min; SKIP_KV_AB=1 skips it). Its fidelity ran in gpu-check.sh's model checks (the
# deep checkpoints per kvCache, $OUT/model-check.log); it ends with the default-cache decision line.
[[ -z "${SKIP_KV_AB:-}" ]] && GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node" OUT="$OUT" timeout 220 bash scripts/gpu-kv-ab.sh 2>&1 | tail -16

# the decode MoE on the decode layout (issue 12 item 1; mma-relaid, opt-in) against the default, end to end:
# decode at 512 / 4096, prefill 2048, the re-layout's load cost, and the rule's line (gpu-moe-relaid-ab.sh,
# ~1 min; SKIP_RELAID=1 skips it). Its correctness ran in gpu_check ("moe decode layout", "decode mma-relaid").
[[ -z "${SKIP_RELAID:-}" ]] && GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node" OUT="$OUT" timeout 240 bash scripts/gpu-moe-relaid-ab.sh 2>&1 | tail -10

# the decode GEMVs (issue 12 item 2, issue 15's Q8_0 GEMV): the default (Xs where it applies, since 076961b)
# against GPTOSS_CUDA_GEMV=warp (the opt-out) and GPTOSS_CUDA_GEMV_CTAS=1|2: gpu_check --gemv, memcheck, the
# kernel bench per shape (old vs new, % of copy), e2e 20b decode bf16 and q8, and the rules' lines
# (gpu-gemv-ab.sh, ~5 min; SKIP_GEMV=1 skips it). Predictions: bench/RESULTS.md "Decode GEMVs at the copy ceiling".
[[ -z "${SKIP_GEMV:-}" ]] && GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node" OUT="$OUT" timeout 600 bash scripts/gpu-gemv-ab.sh 2>&1 | tail -70

# tensor-core decode attention (issue 12 item 3; GPTOSS_CUDA_ATTN_DECODE=mma, opt-in) against the SIMT kernel:
# its gpu_check cases, the kernel bench at 1k / 8k / 32k keys beside the copy ceiling, e2e 20b at 512 / 8192
# and the rule's line (gpu-attn-ab.sh, ~4 min; SKIP_ATTN=1 skips it).
[[ -z "${SKIP_ATTN:-}" ]] && GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node" BUILD_DIR=build-gpu OUT="$OUT" timeout 420 bash scripts/gpu-attn-ab.sh 2>&1 | tail -40

# the prefill GEMM tile on wgmma (issue 12 item 4; the default per problem on sm_90a since 98332a8's H100 run,
# GPTOSS_CUDA_GEMM=mma|wgmma forces one tile): gpu_check --gemm-wgmma, memcheck + racecheck on its quick set, the
# kernel bench of both tiles beside cuBLAS's ceiling, e2e 20b prefill 512 / 2048 (and 120b) of the default
# against forced mma.sync and the rule's line (gpu-wgmma-ab.sh, ~8-9 min; SKIP_WGMMA=1 skips it).
# Predictions: bench/RESULTS.md "Prefill GEMMs on wgmma" and "the GEMM tile chosen per problem".
[[ -z "${SKIP_WGMMA:-}" ]] && GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node" BUILD_DIR=build-gpu OUT="$OUT" timeout 600 bash scripts/gpu-wgmma-ab.sh 2>&1 | tail -50

# the streaming MoE of a batched decode step (issue 11; GPTOSS_CUDA_MOE_BATCH=stream, opt-in: compiled, not yet run
# when written): gpu_check --moe-stream, the kernel bench of gemm / mma / stream at 8, 64, 128 streams' routings
# beside the copy ceiling, bench/batch.mjs 20b 4 and 24 layers at 64 and 128 streams, gemm vs stream, and the
# rule's line (gpu-moe-batch-ab.sh, < 4 min; SKIP_MOE_BATCH=1 skips it). Predictions: bench/RESULTS.md "The
# streaming MoE of a decode batch".
[[ -z "${SKIP_MOE_BATCH:-}" ]] && GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node" BUILD_DIR=build-gpu OUT="$OUT" timeout 300 bash scripts/gpu-moe-batch-ab.sh 2>&1 | tail -60

# Blackwell's native MXFP4 MMAs (issue 12 item 5): compile evidence only, the probe's PTX through ptxas
# for sm_120a / sm_100a and, with the host's cuobjdump, the SASS MMA lines (seconds; nothing runs on the
# GPU). Expected: both "ptxas accepted"; SASS: an OMMA-class block-scaled MMA on sm_120a, a UTC*MMA
# tcgen05 issue on sm_100a. SKIP_BLACKWELL=1 skips it.
[[ -z "${SKIP_BLACKWELL:-}" ]] && OUT="$OUT" timeout 120 bash scripts/ptx-blackwell.sh 2>&1 | tail -20

# the CUDA batched step: equivalence, memcheck, serving bench (gpu-batch.sh; SKIP_BATCH=1 skips it)
[[ -z "${SKIP_BATCH:-}" ]] && BUILD_DIR=build-gpu OUT="$OUT" bash scripts/gpu-batch.sh 2>&1 | tail -40
# pipelined decode (issue 11, compiled, not yet run): check vs the plain step, memcheck, plain/pipelined
# serving bench (gpu-pipeline.sh, 3-5 min; SKIP_PIPELINE=1 skips it)
[[ -z "${SKIP_PIPELINE:-}" ]] && BUILD_DIR=build-gpu OUT="$OUT" bash scripts/gpu-pipeline.sh 2>&1 | tail -30

if [[ -z "${SKIP_SANITIZER:-}" && -x build-gpu/gptoss_gpu_check ]] && command -v compute-sanitizer > /dev/null; then
  for tool in memcheck racecheck; do
    timeout "${SANITIZER_TIMEOUT:-120}" compute-sanitizer --tool "$tool" --print-limit 10 build-gpu/gptoss_gpu_check --quick > "$OUT/$tool.log" 2>&1
    echo "$tool rc $? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1)"
  done
fi
(cd "$OUT" && tar czf all.tgz --exclude=all.tgz . 2>/dev/null)
