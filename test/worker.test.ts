// The addon is context-aware: it loads in worker_threads (each its own N-API environment), runs
// models there concurrently with the main thread, and survives a worker terminated mid-forward.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadModel, openCheckpoint } from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import { fixtureDir, readF32, readJson, relL2 } from './helpers/fixtures.js';

const require = createRequire(import.meta.url);
const tokens = readJson<number[]>('tiny-a', 'tokens.json');
const reference = readF32('tiny-a', 'logits.f32');

function checkpointSpec() {
  const ck = openCheckpoint(fixtureDir('tiny-a'));
  return {
    config: ck.config,
    files: ck.files,
    tensors: ck.tensors,
    device: 'cpu',
  };
}

// Plain CommonJS run in the worker: load the addon there and run tiny-a.
const workerSource = `
const { workerData, parentPort } = require('node:worker_threads');
const addon = require(workerData.nodeGypBuild)(workerData.root);
(async () => {
  const model = await addon.NativeModel.load(workerData.spec);
  const session = new addon.NativeSession(model, 64);
  parentPort.postMessage('started');
  const logits = await session.forward(Int32Array.from(workerData.tokens), 'all');
  parentPort.postMessage(logits);
})().catch((e) => parentPort.postMessage({ error: String(e && e.message) }));
`;

function startWorker(): Worker {
  return new Worker(workerSource, {
    eval: true,
    workerData: { root: packageRoot, nodeGypBuild: require.resolve('node-gyp-build'), spec: checkpointSpec(), tokens },
  });
}

describe('worker_threads', () => {
  it('runs the model in two workers and the main thread at once, all matching transformers', async () => {
    const results = [startWorker(), startWorker()].map(
      (w) =>
        new Promise<Float32Array>((resolve, reject) => {
          w.on('message', (m) => {
            if (m instanceof Float32Array) resolve(m);
            else if (m && typeof m === 'object' && 'error' in m) reject(new Error(m.error));
          });
          w.on('error', reject);
        }).finally(() => w.terminate()),
    );
    const model = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
    const main = await model.forward(tokens);
    const [a, b] = await Promise.all(results);
    for (const logits of [main, a, b]) expect(relL2(logits, reference)).toBeLessThan(1e-3);
    await model.dispose();
  });

  it('runs a batched step in a worker (the same greedy ids as the main thread) and survives its termination mid-step', async () => {
    const source = `
const { workerData, parentPort } = require('node:worker_threads');
const addon = require(workerData.nodeGypBuild)(workerData.root);
(async () => {
  const model = await addon.NativeModel.load(workerData.spec);
  const batch = new addon.NativeBatch(model, { maxSequences: 2, kvBlocks: 256, blockSize: 8 });
  const seqs = [batch.open(1000), batch.open(1000)];
  const greedy = { options: { temperature: 0, topK: 0, topP: 1, minP: 0 }, uniform: 0.5 };
  const ids = await batch.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.from(workerData.tokens.slice(i)), sample: greedy })));
  parentPort.postMessage(ids);
  for (;;) await batch.step(seqs.map((seq) => ({ seq, tokens: Int32Array.of(1), sample: greedy })));
})().catch((e) => parentPort.postMessage({ error: String(e && e.message) }));
`;
    const w = new Worker(source, {
      eval: true,
      workerData: { root: packageRoot, nodeGypBuild: require.resolve('node-gyp-build'), spec: checkpointSpec(), tokens },
    });
    const ids = await new Promise<Int32Array>((resolve, reject) => {
      w.on('message', (m) => (m instanceof Int32Array ? resolve(m) : reject(new Error(m.error))));
      w.on('error', reject);
    });
    await w.terminate(); // a step is running or queued
    const model = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
    const b = model.createBatchBackend({ kvBlocks: 32, blockSize: 8 });
    const seqs = [b.open(100)!, b.open(100)!];
    const want = await b.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.from(tokens.slice(i)), sample: { options: { temperature: 0 }, uniform: 0.5 } })));
    expect([...ids]).toEqual([...want]);
    await b.dispose();
    await model.dispose();
  });

  it('survives a worker terminated while its forward pass runs', async () => {
    const w = startWorker();
    await new Promise<void>((resolve) => w.on('message', (m) => m === 'started' && resolve()));
    await w.terminate();
    // The process and the addon in this thread keep working.
    const model = await loadModel(fixtureDir('tiny-a'), { device: 'cpu' });
    expect(relL2(await model.forward(tokens), reference)).toBeLessThan(1e-3);
    await model.dispose();
  });
});
