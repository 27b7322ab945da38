#!/bin/sh
# prebuildify runs "node-gyp rebuild --target=... --arch=..." and then moves build/Release/*.node
# into prebuilds/<platform>-<arch>/; this stands in for node-gyp and builds with cmake-js instead
# (shared/TOOLCHAIN.md section 3). The arguments are node-gyp's and are ignored: the N-API build is the
# same for every Node version. scripts/prebuilds.sh sets what differs:
#   PREBUILD_ARCH=arm64: cross-compile in build-arm64/ with scripts/aarch64-linux-gnu.cmake (CPU only,
#     NEON), and put the result where prebuildify looks (build/Release/);
#   otherwise: an incremental build in build/ with the release CUDA settings (PREBUILD_CUDA_ARCHS).
# `cmake-js configure` then `build`, not `compile`: compile ignores -D options once build/ is configured.
set -eu
if [ "${PREBUILD_ARCH:-}" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
  npx cmake-js configure --out build-arm64 --CDCMAKE_TOOLCHAIN_FILE="$PWD/scripts/aarch64-linux-gnu.cmake" --CDGPTOSS_CUDA=OFF
  npx cmake-js build --out build-arm64
  mkdir -p build/Release
  rm -f build/Release/*.node
  cp build-arm64/Release/gpt_oss_node.node build/Release/gpt_oss_node.node
else
  npx cmake-js configure --CDGPTOSS_CUDA="${PREBUILD_CUDA:-ON}" ${PREBUILD_CUDA_ARCHS:+"--CDGPTOSS_CUDA_ARCHS=$PREBUILD_CUDA_ARCHS"}
  npx cmake-js build
fi
