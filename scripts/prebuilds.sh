#!/usr/bin/env bash
# Builds the binaries the npm package ships, with prebuildify through the cmake-js shim
# (scripts/cmake-js-as-node-gyp.sh), into prebuilds/ (node-gyp-build loads them; not committed to git):
#   prebuilds/linux-x64/gpt-oss-node.glibc.node    CPU kernels (AVX-512 / AVX2 / scalar, chosen at run
#       time) + CUDA: SASS for every arch of native/cuda/cuda.cmake and the compute PTX, static cudart,
#       no link-time dependency on the driver (libcuda.so.1 is dlopened by cudart at the first call);
#   prebuilds/linux-arm64/gpt-oss-node.glibc.node  CPU kernels (NEON), cross-compiled.
#
#   bash scripts/prebuilds.sh [x64] [arm64]      (default: both)
# Needs nvcc for x64 (PREBUILD_CUDA=OFF builds a CPU-only x64 binary, for trying the packaging without
# CUDA: never publish that) and g++-aarch64-linux-gnu for arm64. prebuildify moves the binary out of
# build/Release; the next `npx cmake-js compile` relinks it.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x64 arm64)

# The release arch list is cuda.cmake's default (one place), passed explicitly so that a build/ tree
# configured for a quick single-arch build still produces the full binary.
PREBUILD_CUDA_ARCHS=$(sed -n 's/^set(GPTOSS_CUDA_ARCHS "\([^"]*\)".*/\1/p' native/cuda/cuda.cmake)
export PREBUILD_CUDA_ARCHS PREBUILD_CUDA=${PREBUILD_CUDA:-ON}
prebuildify=(npx prebuildify --napi --strip --tag-libc --node-gyp ./scripts/cmake-js-as-node-gyp.sh)

# The oldest systems a prebuild loads on are set by the newest symbol versions it needs: glibc 2.34 and
# g++ 12's libstdc++ (GLIBCXX_3.4.30) are Debian 12 / Ubuntu 22.04 (see CMakeLists.txt on libstdc++).
check_abi() { # <binary> <objdump>
  local need
  for limit in GLIBC_2.34 GLIBCXX_3.4.30; do
    need=$("$2" -T "$1" | grep -o "${limit%%_*}_[0-9.]*" | sort -Vu | tail -1)
    if [ -n "$need" ] && [ "$(printf '%s\n' "$need" "$limit" | sort -V | tail -1)" != "$limit" ]; then
      echo "prebuilds: $1 needs $need, newer than $limit: it would not load on older distributions" >&2
      exit 1
    fi
  done
}

for t in "${targets[@]}"; do
  start=$(date +%s)
  case "$t" in
    x64)
      if [ "$PREBUILD_CUDA" != OFF ] && ! command -v nvcc > /dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
        echo "prebuilds: nvcc not found; the linux-x64 prebuild carries the CUDA backend (PREBUILD_CUDA=OFF to build it CPU-only)" >&2
        exit 1
      fi
      "${prebuildify[@]}" --arch x64
      bin=prebuilds/linux-x64/gpt-oss-node.glibc.node
      # The shipped x64 binary must load on machines without an NVIDIA driver.
      if readelf -d "$bin" | grep -q 'NEEDED.*libcuda'; then
        echo "prebuilds: $bin links libcuda (it must only dlopen it)" >&2
        exit 1
      fi
      check_abi "$bin" objdump
      # The HIP plugin (native/hip/hip_plugin.h), when this build has one: beside the .node, where the
      # loader looks; like the .node it must not link ROCm (libamdhip64 is dlopened at run time).
      if [ -f build/Release/gpt_oss_hip.so ]; then
        strip -o prebuilds/linux-x64/gpt_oss_hip.so build/Release/gpt_oss_hip.so
        if readelf -d prebuilds/linux-x64/gpt_oss_hip.so | grep -q 'NEEDED.*amdhip'; then
          echo "prebuilds: gpt_oss_hip.so links libamdhip64 (it must only be dlopened)" >&2
          exit 1
        fi
        echo "prebuilds: prebuilds/linux-x64/gpt_oss_hip.so $(stat -c %s prebuilds/linux-x64/gpt_oss_hip.so) bytes"
      fi
      ;;
    arm64)
      command -v aarch64-linux-gnu-g++ > /dev/null ||
        { echo "prebuilds: aarch64-linux-gnu-g++ not found (apt-get install g++-aarch64-linux-gnu)" >&2; exit 1; }
      # prebuildify copies (and strips) every shared library it finds in build/Release: the x64 HIP
      # plugin there is not part of the arm64 package (and aarch64 strip rejects it). Set it aside.
      stash=$(mktemp -d)
      for so in build/Release/*.so; do [ -e "$so" ] && mv "$so" "$stash/"; done
      arm64_rc=0
      "${prebuildify[@]}" --arch arm64 --strip-bin aarch64-linux-gnu-strip || arm64_rc=$?
      for so in "$stash"/*.so; do [ -e "$so" ] && mv "$so" build/Release/; done
      rmdir "$stash"
      [ "$arm64_rc" = 0 ] || exit "$arm64_rc"
      bin=prebuilds/linux-arm64/gpt-oss-node.glibc.node
      check_abi "$bin" aarch64-linux-gnu-objdump
      ;;
    *) echo "prebuilds: unknown target '$t' (x64 or arm64)" >&2; exit 1 ;;
  esac
  echo "prebuilds: $bin $(stat -c %s "$bin") bytes ($(readelf -h "$bin" | sed -n "s/.*Machine: *//p")), $(($(date +%s) - start)) s"
done
