# Sourced on the GPU host from the repository root after scripts/gpu-export.sh (carry [".gpu"]): puts the
# carried node on the PATH, dist/ and node_modules/ in place, and prebuilt binaries (.gpu/bin/*.xz, if any)
# in build-gpu/, and exports GPT_OSS_NODE_BINARY when the addon is among them. Changes nothing already there.
if ! command -v node > /dev/null && [[ -f .gpu/node.xz ]]; then
  xz -dc .gpu/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
fi
[[ -d .gpu/dist && ! -f dist/model.js ]] && cp -r .gpu/dist dist
[[ -d .gpu/node_modules && ! -d node_modules ]] && cp -r .gpu/node_modules node_modules
if compgen -G ".gpu/bin/*.xz" > /dev/null; then
  mkdir -p build-gpu
  for f in .gpu/bin/*.xz; do
    b=build-gpu/$(basename "$f" .xz)
    [[ -x $b ]] || { xz -dc "$f" > "$b" && chmod +x "$b"; }
  done
  [[ -f build-gpu/gpt_oss_node.node ]] && export GPT_OSS_NODE_BINARY="$PWD/build-gpu/gpt_oss_node.node"
fi
echo "gpu host: tree $(cat .gpu/COMMIT 2>/dev/null || git log -1 --format=%H 2>/dev/null), node $(node --version 2>/dev/null || echo missing)"
