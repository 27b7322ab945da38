#!/usr/bin/env bash
# Local side of a GPU run: exports the committed tree (HEAD) and its compiled TypeScript into .gpu/src,
# so the device machine builds exactly a commit even while the working tree has edits in progress
# (the device tool copies the working tree as it is). On the GPU host: `cd .gpu/src && bash scripts/...`.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu/src /tmp/gpu-export-wt
git worktree add -f --detach /tmp/gpu-export-wt HEAD -q
mkdir -p .gpu/src
git -C /tmp/gpu-export-wt archive HEAD | tar -x -C .gpu/src
ln -s "$PWD/node_modules" /tmp/gpu-export-wt/node_modules
(cd /tmp/gpu-export-wt && npx tsc -p tsconfig.json && cp -r dist "$OLDPWD/.gpu/src/dist")
git worktree remove --force /tmp/gpu-export-wt
mkdir -p .gpu/src/node_modules
# The addon's build headers and what dist/ imports at run time (the tokenizer's data), not cmake-js
# and the other install-time packages.
for m in node-api-headers node-addon-api gpt-tokenizer; do
  [[ -d node_modules/$m ]] && cp -r node_modules/$m .gpu/src/node_modules/
done
# dist/ is ESM: the tokenizer's CommonJS copy, TypeScript sources and raw data stay behind (the device
# tool carries 64 MiB in all).
rm -rf .gpu/src/node_modules/gpt-tokenizer/{cjs,src,data} .gpu/src/node_modules/gpt-tokenizer/esm/bpeRanks/{cl100k,p50k,r50k}_base.js
# The server (lib/server: `gpt-oss serve`, bench/serve-load.mjs --http) imports fastify: its runtime
# dependency closure, without tests, docs and type declarations (~8 MB).
for m in $(node -e '
  const fs = require("fs"), seen = new Set();
  const walk = (n) => { if (seen.has(n)) return; seen.add(n);
    const pj = JSON.parse(fs.readFileSync(`node_modules/${n}/package.json`, "utf8"));
    for (const d of Object.keys(pj.dependencies || {})) walk(d); };
  walk("fastify"); console.log([...seen].join(" "));'); do
  mkdir -p ".gpu/src/node_modules/$(dirname "$m")"
  cp -r "node_modules/$m" ".gpu/src/node_modules/$m"
done
find .gpu/src/node_modules -mindepth 2 -maxdepth 3 -type d \( -name test -o -name tests -o -name docs -o -name benchmarks -o -name examples \) -prune -exec rm -rf {} +
find .gpu/src/node_modules -name '*.d.ts' -delete -o -name '*.md' -delete -o -name '*.map' -delete
git rev-parse HEAD > .gpu/src/COMMIT
echo "exported $(cat .gpu/src/COMMIT) to .gpu/src ($(du -sh .gpu/src | cut -f1))"
