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
exit $status
