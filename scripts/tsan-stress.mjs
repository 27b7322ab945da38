// Concurrency stress for the native addon, the workload scripts/tsan.sh runs under ThreadSanitizer
// (it also runs, much faster, against the plain build: `node --expose-gc scripts/tsan-stress.mjs`).
// Everything that puts native work on several threads at once, on tiny synthetic models:
//  - models created two at a time (one reporting progress), and disposed while their sessions' forward
//    passes run;
//  - sessions disposed with a step in flight (through lib/ and the addon's NativeSession, NativeModel
//    and NativeBatch directly), generate() aborted mid-stream, an engine (the batched
//    step over a paged KV cache) with concurrent requests, one aborted, closed while busy;
//  - the synchronous kernels (ops.*) on the main thread while forward passes run on libuv's threads,
//    and the pool resized (ops.setThreads) meanwhile;
//  - GC pressure (--expose-gc: global.gc between rounds, JS tensors dropped unreferenced);
//  - the same in worker_threads (the addon is context-aware), one worker terminated mid-forward and
//    each one leaving (process.exit) with a forward pass in flight.
// Exits 0 when every round finished (errors a round expects, such as "the session was disposed",
// are caught); a native fault ends the process with another status (scripts/tsan.sh judges the
// sanitizer's reports).
// Usage: node --expose-gc scripts/tsan-stress.mjs [--rounds N] [--workers N]
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const rounds = isMainThread ? opt('--rounds', 3) : workerData.rounds;
const workers = opt('--workers', 2);
const lib = await import(new URL('../dist/index.js', import.meta.url).href);
const { createSyntheticModel, syntheticConfig, Tensor, kernels } = lib;
const { native } = await import(new URL('../dist/native.js', import.meta.url).href);
const gc = globalThis.gc ?? (() => {});

// A small model: several experts and layers so that a forward pass issues many pool jobs of
// different sizes (chunk counts), the pattern the pool's late-worker race needed.
const SHAPE = {
  vocabSize: 512, hiddenSize: 64, intermediateSize: 64, numLayers: 2, numExperts: 4, expertsPerToken: 2,
  numHeads: 4, numKvHeads: 2, headDim: 16, slidingWindow: 8,
};
const tokens = (n, seed) => Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) % SHAPE.vocabSize);
const expected = (e) => /disposed|aborted|abort|closed|still running/i.test(String(e?.message ?? e));
// What the run did (printed at the end, so a run that exercised nothing is visible as such).
const seen = { models: 0, progress: 0, steps: 0, tokens: 0, rejected: 0, kernels: 0 };
const swallow = (p) => p.then(() => {}, (e) => {
  if (!expected(e)) throw e;
  seen.rejected++;
});

// Synchronous kernels on this thread while async work runs on libuv's threads.
function syncKernels(seed) {
  const n = 3 + (seed % 5), k = 64, m = 32 + 32 * (seed % 3);
  const x = Tensor.fromF32(Float32Array.from({ length: n * k }, (_, i) => Math.sin(i + seed)), [n, k]);
  const w = Tensor.fromF32(Float32Array.from({ length: m * k }, (_, i) => Math.cos(i)), [m, k]);
  const out = Tensor.empty('f32', [n, m]);
  kernels.ops.linear(x, w, null, out);
  const y = Tensor.empty('f32', [n, k]);
  kernels.ops.rmsnorm(x, Tensor.fromF32(new Float32Array(k).fill(1), [k]), 1e-5, y);
  seen.kernels += 2;
  if (seed % 2) out.dispose(); // disposed explicitly or left to the GC
}

async function round(r) {
  const [a, b] = await Promise.all([
    // progress reports from the pool's threads to this one (a thread-safe function)
    createSyntheticModel(SHAPE, { device: 'cpu', seed: r, onProgress: () => void seen.progress++ }),
    createSyntheticModel({ ...SHAPE, numExperts: 6 }, { device: 'cpu', seed: r + 100 }),
  ]);
  seen.models += 2;
  const jobs = [];
  // Sessions on both models at once; one disposed with its step in flight.
  for (const [i, m] of [a, b, a].entries()) {
    const s = m.createSession({ maxContext: 64 });
    jobs.push(swallow((async () => {
      await s.prefill(tokens(9 + i, r + i));
      for (let t = 0; t < 4; ++t, ++seen.steps) await s.stepSample(t + i, { temperature: 0.8 }, (t + 0.5) / 5);
      const inFlight = s.stepSample(3, { temperature: 0 }, 0.5);
      // read while the step runs (a progress display would): the session's length and token ids
      for (let k = 0; k < 3; ++k, await new Promise((res) => setImmediate(res))) void (s.length + s.tokens.length);
      const disposed = s.dispose();
      await Promise.allSettled([inFlight, disposed]);
      await swallow(s.stepSample(1, { temperature: 0 }, 0.5)); // rejected: the session was disposed
    })()));
  }
  // generate() aborted mid-stream.
  const ac = new AbortController();
  const stream = b.generate(tokens(6, r), { maxTokens: 12, signal: ac.signal, temperature: 0.7, seed: r });
  jobs.push(swallow((async () => {
    let k = 0;
    for await (const ev of stream) if (ev.type === 'token' && (++seen.tokens, ++k === 3)) ac.abort();
  })()));
  // The engine: concurrent requests on the batched step, one aborted, closed while busy.
  const engine = a.createEngine({ kvBlocks: 32, blockSize: 8, maxSequences: 4 });
  const reqs = [0, 1, 2].map((i) => engine.generate(tokens(5 + i, r + i), { maxTokens: 6, temperature: 0.5, seed: i }));
  for (const [i, q] of reqs.entries())
    jobs.push(swallow((async () => {
      for await (const ev of q) if (ev.type === 'token' && (++seen.tokens, i === 1)) q.abort();
      await q.result;
    })()));
  // Synchronous kernels and a pool resize while all of that runs.
  for (let i = 0; i < 6; ++i) {
    syncKernels(r * 7 + i);
    if (i === 3 && isMainThread) kernels.setThreads(2 + ((r + i) % 2));
    await new Promise((res) => setImmediate(res));
  }
  // The addon's own objects (below lib/'s serialization): a NativeSession, its NativeModel and a
  // NativeBatch disposed while their forward passes run (each pass holds its own references).
  const nm = await native.NativeModel.synthetic({ config: syntheticConfig(SHAPE), seed: r, device: 'cpu' });
  const ns = new native.NativeSession(nm, 32);
  const nb = new native.NativeBatch(nm, { maxSequences: 2, kvBlocks: 8, blockSize: 8 });
  const seq = nb.open(16);
  const sample = { options: { temperature: 0, topK: 0, topP: 1, minP: 0 }, uniform: 0.5 };
  const passes = [ns.forward(Int32Array.from(tokens(10, r)), 'last'), nb.step([{ seq, tokens: Int32Array.from(tokens(6, r)), sample }])];
  ns.dispose();
  nb.dispose();
  nm.dispose();
  for (const p of passes) jobs.push(p.then(() => void seen.steps++));
  // The model disposed while a forward pass of one of its sessions runs.
  const late = b.createSession({ maxContext: 32 });
  const fwd = swallow(late.prefill(tokens(12, r)));
  await b.dispose();
  jobs.push(fwd.then(() => late.dispose()));
  await Promise.all(jobs);
  await engine.close();
  await a.dispose();
  gc();
}

async function main() {
  for (let r = 0; r < rounds; ++r) await round(r);
}

if (isMainThread) {
  const self = fileURLToPath(import.meta.url);
  const spawned = Array.from({ length: workers }, (_, i) => new Worker(self, { workerData: { rounds: i === 0 ? 1 : rounds } }));
  const exits = spawned.map((w) => new Promise((res, rej) => {
    w.on('error', rej);
    w.on('exit', res);
  }));
  // Worker 0 is terminated in the middle of its forward passes (the environment torn down under them).
  setTimeout(() => void spawned[0].terminate(), 150);
  await main();
  await Promise.all(exits);
  gc();
  console.log(`tsan-stress: ${rounds} rounds on the main thread and ${workers} workers finished; main thread: ` +
    `${seen.models} models (${seen.progress} progress reports), ${seen.steps} session steps, ${seen.tokens} generated tokens, ${seen.kernels} sync kernels, ` +
    `${seen.rejected} calls rejected as expected (disposed / aborted)`);
} else {
  await main();
  parentPort.postMessage('done');
  // Leave with a forward pass in flight: the environment is torn down under it.
  const nm = await native.NativeModel.synthetic({ config: syntheticConfig(SHAPE), seed: 5, device: 'cpu' });
  void new native.NativeSession(nm, 64).forward(Int32Array.from(tokens(40, 5)), 'all').catch(() => {}); // queued now
  process.exit(0);
}
