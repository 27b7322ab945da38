#!/usr/bin/env bash
# Local side of a GPU run: what the device machine needs beside the working tree, in .gpu/ (the device tool
# copies the tracked files and carries the ignored paths named in `carry`, 64 MiB in all; a second copy of
# the tree no longer fits beside Node and the fixtures):
#   .gpu/dist          the committed tree's compiled TypeScript (HEAD, built in a scratch worktree)
#   .gpu/node_modules  what dist/ imports at run time (the tokenizer, fastify's closure) and the addon's build
#                      headers (node-api-headers, node-addon-api), not cmake-js and the install-time packages
#   .gpu/node.xz       this machine's node (kept when present)
#   .gpu/COMMIT        HEAD
# The device builds the working tree as copied, so the tree must be HEAD: tracked edits make this refuse
# (commit or stash them first). Then, with carry [".gpu"], on the device, from the repository root:
#   source scripts/gpu-host-setup.sh; OUT=$OUT bash scripts/gpu-all.sh
# (prebuilt binaries, if any, go in .gpu/bin/*.xz: scripts/gpu-host-setup.sh unpacks them into build-gpu/).
# --binaries: also build gptoss_gpu_check, gptoss_gpu_bench and gpt_oss_node.node for sm_90a here (build-gpu/,
# configured on first use; ~4 min from scratch on 2 cores) and pack them into .gpu/bin, so that a device call runs
# them instead of building. Without it, a .gpu/bin left by an earlier export (another commit's binaries) is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
binaries=0
for a in "$@"; do
  case $a in
    --binaries) binaries=1 ;;
    *) echo "gpu-export: unknown argument '$a' (--binaries)" >&2; exit 2 ;;
  esac
done
if ! git diff --quiet HEAD --; then
  echo "gpu-export: tracked files differ from HEAD; the device would build the working tree, not HEAD (commit or stash first)" >&2
  exit 1
fi
rm -rf .gpu/src .gpu/dist .gpu/node_modules /tmp/gpu-export-wt
mkdir -p .gpu
git worktree add -f --detach /tmp/gpu-export-wt HEAD -q
ln -s "$PWD/node_modules" /tmp/gpu-export-wt/node_modules
(cd /tmp/gpu-export-wt && npx tsc -p tsconfig.json --outDir "$OLDPWD/.gpu/dist")
git worktree remove --force /tmp/gpu-export-wt
mkdir -p .gpu/node_modules
for m in node-api-headers node-addon-api gpt-tokenizer; do
  [[ -d node_modules/$m ]] && cp -r node_modules/$m .gpu/node_modules/
done
# dist/ is ESM: the tokenizer's CommonJS copy, TypeScript sources and raw data stay behind.
rm -rf .gpu/node_modules/gpt-tokenizer/{cjs,src,data} .gpu/node_modules/gpt-tokenizer/esm/bpeRanks/{cl100k,p50k,r50k}_base.js
# The server (lib/server: `gpt-oss serve`, bench/serve-load.mjs --http) imports fastify: its runtime
# dependency closure, without tests, docs and type declarations (~8 MB).
for m in $(node -e '
  const fs = require("fs"), seen = new Set();
  const walk = (n) => { if (seen.has(n)) return; seen.add(n);
    const pj = JSON.parse(fs.readFileSync(`node_modules/${n}/package.json`, "utf8"));
    for (const d of Object.keys(pj.dependencies || {})) walk(d); };
  walk("fastify"); console.log([...seen].join(" "));'); do
  mkdir -p ".gpu/node_modules/$(dirname "$m")"
  cp -r "node_modules/$m" ".gpu/node_modules/$m"
done
find .gpu/node_modules -mindepth 2 -maxdepth 3 -type d \( -name test -o -name tests -o -name docs -o -name benchmarks -o -name examples \) -prune -exec rm -rf {} +
find .gpu/node_modules -name '*.d.ts' -delete -o -name '*.md' -delete -o -name '*.map' -delete
[[ -f .gpu/node.xz ]] || xz -T2 -c "$(command -v node)" > .gpu/node.xz
rm -rf .gpu/bin
if [[ $binaries == 1 ]]; then
  if [[ ! -f build-gpu/build.ninja ]]; then
    cmake -G Ninja -B build-gpu -DCMAKE_BUILD_TYPE=Release -DGPTOSS_CUDA_ARCHS=90a-real -DGPTOSS_HIP=OFF -DGPTOSS_GPU_TESTS=ON \
      "-DCMAKE_JS_INC=$PWD/node_modules/node-api-headers/include;$PWD/node_modules/node-addon-api" > /dev/null
  fi
  ninja -C build-gpu gptoss_gpu_check gptoss_gpu_bench gpt_oss_node > /dev/null
  mkdir -p .gpu/bin
  for b in gptoss_gpu_check gptoss_gpu_bench gpt_oss_node.node; do xz -T2 -c "build-gpu/$b" > ".gpu/bin/$b.xz"; done
fi
git rev-parse HEAD > .gpu/COMMIT
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carried=$(du -sb .gpu | cut -f1)
echo "exported $(cat .gpu/COMMIT) to .gpu ($(( carried / 1048576 )) MiB; with the tracked tree $(( (carried + tracked) / 1048576 )) of the 64 MiB the device tool carries)"
