#!/usr/bin/env node
// npm's install step for gpt-oss-node. A prebuilt binary that loads (prebuilds/<platform>-<arch>/)
// means nothing to do: no compiler, seconds. Otherwise build from source with cmake-js when cmake and
// a C++ compiler are on PATH, or fail at once saying which platform has no prebuild and how to build.
//
// Plain JavaScript with no dependency but node-gyp-build (it runs before anything is compiled).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const PREBUILT = 'linux-x64 (glibc), linux-arm64 (glibc)'; // keep in step with lib/native.ts

function platformTag() {
  const tag = `${process.platform}-${process.arch}`;
  if (process.platform !== 'linux') return tag;
  return `${tag} (${process.report?.getReport()?.header?.glibcVersionRuntime ? 'glibc' : 'musl'})`;
}

function onPath(names) {
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    for (const name of names) if (dir && existsSync(join(dir, name))) return join(dir, name);
  return null;
}

if (process.env.GPT_OSS_NODE_BINARY) {
  console.log(`gpt-oss-node: using GPT_OSS_NODE_BINARY=${process.env.GPT_OSS_NODE_BINARY}`);
  process.exit(0);
}

let loadError = null;
try {
  const path = require('node-gyp-build').resolve(root);
  require(path);
  process.exit(0); // a prebuild (or an earlier build) loads: nothing to compile
} catch (e) {
  loadError = e;
}

const platform = platformTag();
const cmake = onPath(['cmake']);
const cxx = process.env.CXX ? onPath([process.env.CXX]) ?? (existsSync(process.env.CXX) ? process.env.CXX : null) : onPath(['c++', 'g++', 'clang++']);
const why = String(loadError?.message ?? loadError).split('\n')[0];
if (!cmake || !cxx) {
  const missing = [!cmake && 'cmake (>= 3.18)', !cxx && 'a C++17 compiler (g++ or clang++)'].filter(Boolean).join(' and ');
  console.error(
    `gpt-oss-node: no prebuilt binary loads on ${platform}, Node ${process.versions.node} (${why}).\n` +
      `Prebuilt binaries ship for ${PREBUILT}. To build from source on this machine, install ${missing}` +
      ' (and the CUDA toolkit\'s nvcc for the CUDA backend), then run `npm rebuild gpt-oss-node`;' +
      ' or set GPT_OSS_NODE_BINARY to a gpt_oss_node.node built elsewhere.',
  );
  process.exit(1);
}

console.log(`gpt-oss-node: no prebuilt binary for ${platform} (${why}); building from source with cmake-js (${cmake}, ${cxx})`);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    `gpt-oss-node: the source build failed on ${platform} (see above). It needs Linux, cmake >= 3.18, a C++17 compiler` +
      ' and, for CUDA, nvcc (GPTOSS_CUDA=OFF in the environment builds the CPU backend only).',
  );
  process.exit(r.status ?? 1);
}
