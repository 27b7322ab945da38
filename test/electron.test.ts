// What Electron asks of the addon, tested without Electron (its installer downloads from outside):
// several JS environments at once (worker_threads loading the package concurrently, two instances of
// the binary in one process), a binary loaded from an app.asar.unpacked path (GPT_OSS_NODE_BINARY), and
// the compile-time guard against external ArrayBuffers (Electron's V8 memory cage forbids them).
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../lib/native.js';
import { fixtureDir, readF32, readJson, relL2 } from './helpers/fixtures.js';

const require = createRequire(import.meta.url);
const binary = (require('node-gyp-build') as { resolve(dir: string): string }).resolve(packageRoot);
const tokens = readJson<number[]>('tiny-a', 'tokens.json');
const reference = readF32('tiny-a', 'logits.f32');
const scratch = mkdtempSync(join(tmpdir(), 'gpt-oss-electron-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('several JS environments at once', () => {
  it('4 worker_threads import the package and load + run tiny-a concurrently, with the main thread', async () => {
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.entry).then(async ({ loadModel }) => {
        const model = await loadModel(workerData.dir, { device: 'cpu' });
        const logits = await model.forward(workerData.tokens);
        await model.dispose();
        parentPort.postMessage(logits);
      }).catch((e) => parentPort.postMessage({ error: String(e && e.stack) }));`;
    const entry = new URL('../dist/index.js', import.meta.url).href;
    const runs = Array.from({ length: 4 }, () => {
      const w = new Worker(source, { eval: true, workerData: { entry, dir: fixtureDir('tiny-a'), tokens } });
      return new Promise<Float32Array>((resolve, reject) => {
        w.on('message', (m) => (m instanceof Float32Array ? resolve(m) : reject(new Error(m.error))));
        w.on('error', reject);
      }).finally(() => w.terminate());
    });
    const { loadModel } = await import('../lib/index.js');
    const model = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
    const main = await model.forward(tokens);
    await model.dispose();
    for (const logits of [main, ...(await Promise.all(runs))]) expect(relL2(logits, reference)).toBeLessThan(1e-3);
  });

  it('two instances of the binary in one process keep separate state; one rejects the other\'s tensors', () => {
    const copy = join(scratch, 'second-instance.node');
    copyFileSync(binary, copy);
    const a = require(binary);
    const b = require(copy);
    expect(a).not.toBe(b);
    const ta = new a.Tensor('f32', [2], 'cpu', new Float32Array([1, 2]));
    const tb = new b.Tensor('f32', [2], 'cpu', new Float32Array([3, 4]));
    b.ops.add(tb, tb);
    expect(Array.from(new Float32Array(tb.read()))).toEqual([6, 8]);
    // each instance checks tensors against its own class (per-environment instance data), so a foreign
    // one is a TypeError, not memory read as the wrong type
    expect(() => b.ops.add(tb, ta)).toThrow(TypeError);
    expect(Array.from(new Float32Array(ta.read()))).toEqual([1, 2]);
  });
});

describe('packaged apps', () => {
  it('loads the binary from an app.asar.unpacked path given by GPT_OSS_NODE_BINARY', async () => {
    const unpacked = join(scratch, 'resources', 'app.asar.unpacked', 'node_modules', 'gpt-oss-node', 'build', 'Release');
    mkdirSync(unpacked, { recursive: true });
    copyFileSync(binary, join(unpacked, 'gpt_oss_node.node'));
    const script = `
      import { loadModel } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const model = await loadModel(${JSON.stringify(fixtureDir('tiny-a'))}, { device: 'cpu' });
      const logits = await model.forward(${JSON.stringify(tokens)});
      const libs = process.report.getReport().sharedObjects.filter((p) => p.endsWith('.node'));
      console.log(JSON.stringify({ libs, first: Array.from(logits.subarray(0, 4)) }));`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, GPT_OSS_NODE_BINARY: join(unpacked, 'gpt_oss_node.node') },
      }, (e, stdout, stderr) => (e ? reject(new Error(stderr)) : resolve(stdout))),
    );
    const r = JSON.parse(out) as { libs: string[]; first: number[] };
    expect(r.libs).toEqual([join(unpacked, 'gpt_oss_node.node')]);
    r.first.forEach((v, i) => expect(v).toBeCloseTo(reference[i], 4));
  });
});

describe('compile-time guard', () => {
  const cxx = ['g++', 'c++', 'clang++'].find((c) => {
    try {
      execFileSync(c, ['--version'], { stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  });
  it.skipIf(!cxx)("the addon's compile definitions make an external ArrayBuffer a compile error", () => {
    // the definitions CMakeLists.txt gives the addon, read from it (so the test follows the build)
    const cmake = readFileSync(new URL('../CMakeLists.txt', import.meta.url), 'utf8');
    const defs = /add_compile_definitions\(([^)]*NAPI_VERSION[^)]*)\)/.exec(cmake)![1].split(/\s+/).filter(Boolean);
    expect(defs).toContain('NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED');
    const src = join(scratch, 'external.cpp');
    writeFileSync(src, `#include <napi.h>
static char storage[16];
Napi::Value f(const Napi::CallbackInfo& info) { return Napi::ArrayBuffer::New(info.Env(), storage, sizeof storage); }
`);
    const inc = [join(packageRoot, 'node_modules/node-api-headers/include'), join(packageRoot, 'node_modules/node-addon-api')];
    const compile = (d: string[]) =>
      execFileSync(cxx!, ['-std=c++17', '-fsyntax-only', ...inc.map((i) => `-I${i}`), ...d.map((x) => `-D${x}`), src], { stdio: 'pipe' });
    // without the guard the snippet compiles: the test can tell the two apart
    expect(() => compile(defs.filter((d) => d !== 'NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED'))).not.toThrow();
    expect(() => compile(defs)).toThrow(/ArrayBuffer::New|no matching function/);
  });
});
