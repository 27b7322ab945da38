#!/usr/bin/env bash
# Compile evidence for Blackwell's native MXFP4 MMAs (issue 12 item 5; native/cuda/mma_mxf4.cuh):
# native/cuda/tests/blackwell_probe.cu to PTX for sm_120a and sm_100a, each PTX through ptxas, and,
# where cuobjdump exists (the GPU host's CUDA has it; this dev box's 13.0 install does not), the SASS of
# the probe kernels with the MMA lines picked out. One "accepted" or "REJECTED" line per target.
#   env: OUT (default ./gpu-logs), NVCC (default nvcc on the PATH, else /usr/local/cuda/bin/nvcc)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-logs}"
mkdir -p "$OUT/blackwell"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
PTXAS="$(dirname "$NVCC")/ptxas"
CUOBJDUMP="$(dirname "$NVCC")/cuobjdump"
status=0
for target in "120a:mma.sync.aligned.m16n8k64.row.col.kind::mxf4.block_scale" "100a:tcgen05.mma.cta_group::1.kind::mxf4.block_scale"; do
  arch="${target%%:*}" want="${target#*:}"
  ptx="$OUT/blackwell/probe-sm_$arch.ptx"
  if ! "$NVCC" -std=c++17 -Inative -gencode "arch=compute_$arch,code=sm_$arch" -ptx native/cuda/tests/blackwell_probe.cu -o "$ptx" \
      > "$OUT/blackwell/nvcc-sm_$arch.log" 2>&1; then
    echo "sm_$arch: nvcc REJECTED ($(tail -1 "$OUT/blackwell/nvcc-sm_$arch.log"))"; status=1; continue
  fi
  n=$(grep -c -F "$want" "$ptx")
  if "$PTXAS" -arch="sm_$arch" -v "$ptx" -o "$OUT/blackwell/probe-sm_$arch.cubin" > "$OUT/blackwell/ptxas-sm_$arch.log" 2>&1 && [[ $n -gt 0 ]]; then
    echo "sm_$arch: ptxas accepted $n x '$want' ($(grep -m1 -oE 'Used [0-9]+ registers' "$OUT/blackwell/ptxas-sm_$arch.log"))"
  else
    echo "sm_$arch: REJECTED ($n x '$want' in the PTX; $(grep -m1 -E 'error' "$OUT/blackwell/ptxas-sm_$arch.log"))"; status=1; continue
  fi
  if [[ -x "$CUOBJDUMP" ]]; then
    "$CUOBJDUMP" -sass "$OUT/blackwell/probe-sm_$arch.cubin" > "$OUT/blackwell/probe-sm_$arch.sass" 2>&1
    echo "  SASS sm_$arch: $(grep -cE 'MMA' "$OUT/blackwell/probe-sm_$arch.sass") MMA lines:"
    grep -E 'MMA' "$OUT/blackwell/probe-sm_$arch.sass" | sed 's/^ */    /' | head -6
  fi
done
# The decode MoE kernels on the block-scaled MMA (MoeDecodeKind::MmaMxf8: moe_fp8_stream_kernel<.., true> and its
# self-test, moe_decode_mma.cu) for sm_120a: the instruction in their PTX, ptxas on the whole file.
want="mma.sync.aligned.m16n8k32.row.col.kind::mxf8f6f4.block_scale.scale_vec::1X.f32.e2m1.e4m3.f32.ue8m0"
ptx="$OUT/blackwell/moe-sm_120a.ptx"
if "$NVCC" -std=c++17 -Inative -DGPTOSS_HAVE_CUDA --expt-relaxed-constexpr -gencode "arch=compute_120a,code=sm_120a" -ptx \
    native/cuda/moe_decode_mma.cu -o "$ptx" > "$OUT/blackwell/nvcc-moe-sm_120a.log" 2>&1; then
  # the instruction's lines inside the MmaMxf8 kernels (moe_fp8_stream_kernel<kDown, kStages, true>: ...ELb1EEEv)
  n=$(awk '/^\.visible \.entry|^\.entry/{k = ($0 ~ /moe_fp8_stream_kernelILb[01]ELi[23]ELb1E|mxf8_selftest_kernel/)} k' "$ptx" | grep -c -F "$want")
  if "$PTXAS" -arch=sm_120a -v "$ptx" -o "$OUT/blackwell/moe-sm_120a.cubin" > "$OUT/blackwell/ptxas-moe-sm_120a.log" 2>&1 && [[ $n -gt 0 ]]; then
    echo "sm_120a decode MoE (mma-mxf8): ptxas accepted $n x '$want' in its kernels"
  else
    echo "sm_120a decode MoE (mma-mxf8): REJECTED ($n x '$want'; $(grep -m1 -E 'error' "$OUT/blackwell/ptxas-moe-sm_120a.log"))"; status=1
  fi
  if [[ -x "$CUOBJDUMP" && -f "$OUT/blackwell/moe-sm_120a.cubin" ]]; then
    "$CUOBJDUMP" -sass "$OUT/blackwell/moe-sm_120a.cubin" |
      awk '/Function : /{k = ($0 ~ /moe_fp8_stream_kernelILb0ELi3ELb1E/)} k' > "$OUT/blackwell/moe-sm_120a.sass" 2>&1
    echo "  SASS sm_120a gate_up (mma-mxf8, 3 stages): $(grep -cE 'MMA' "$OUT/blackwell/moe-sm_120a.sass") MMA lines:"
    grep -E 'MMA' "$OUT/blackwell/moe-sm_120a.sass" | sed 's/^ */    /' | sort | uniq -c | head -6
  fi
else
  echo "sm_120a decode MoE (mma-mxf8): nvcc REJECTED ($(grep -m1 -E 'error' "$OUT/blackwell/nvcc-moe-sm_120a.log"))"; status=1
fi
exit $status
