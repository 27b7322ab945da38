#!/usr/bin/env node
// Batched decode: aggregate output tok/s of N concurrent streams through the native batched step
// (model.createBatchBackend: one forward a step for every stream, paged KV cache), against one
// stream through the one-sequence Session path (Session.stepSample, as generate() decodes on the CPU).
//   node bench/batch.mjs <model-dir> [--streams 1,2,4,8] [--context 128] [--decode 16] [--device cpu] [--block-size 16] [--out DIR]
//   node bench/batch.mjs --synthetic 20b|tiny [--layers N] [same options] [--no-session]
// Each stream gets its own random prompt of --context tokens (prefilled in one batched step, not
// timed), then --decode steps in which every stream appends its last id and draws the next (greedy).
// Reported per N: ms a step, aggregate tok/s = N * decode / time, and the ratio to the Session path.
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execSync } from 'node:child_process';
import { loadModel } from '../dist/model.js';
import { createSyntheticModel } from '../dist/synthetic.js';

function parseArgs(argv) {
  const a = { streams: [1, 2, 4, 8], context: 128, decode: 16, device: 'cpu', blockSize: 16, out: 'bench/results', synthetic: null, layers: undefined, model: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--streams') a.streams = argv[++i].split(',').map(Number);
    else if (k === '--context') a.context = Number(argv[++i]);
    else if (k === '--decode') a.decode = Number(argv[++i]);
    else if (k === '--device') a.device = argv[++i];
    else if (k === '--block-size') a.blockSize = Number(argv[++i]);
    else if (k === '--out') a.out = argv[++i];
    else if (k === '--synthetic') a.synthetic = argv[++i];
    else if (k === '--layers') a.layers = Number(argv[++i]);
    else if (k === '--no-session') a.noSession = true;
    else if (a.model === null && !k.startsWith('--')) a.model = k;
    else {
      console.error(`unknown argument ${k}`);
      process.exit(2);
    }
  }
  if ((a.model === null) === (a.synthetic === null)) {
    console.error('usage: node bench/batch.mjs <model-dir> | --synthetic 20b|tiny [--layers N] [--streams 1,2,4,8] [--context 128] [--decode 16]');
    process.exit(2);
  }
  return a;
}

// A deterministic prompt per stream (xorshift), ids below 200000 (ordinary text tokens for o200k).
function prompt(stream, length, vocab) {
  let x = 0x9e3779b9 ^ (stream * 0x85ebca6b);
  return Int32Array.from({ length }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % Math.min(vocab, 200000);
  });
}

const greedy = { options: { temperature: 0 }, uniform: 0.5 };

async function batched(model, n, args) {
  const total = n * (args.context + args.decode + 1);
  const b = model.createBatchBackend({ kvBlocks: Math.ceil(total / args.blockSize) + n, blockSize: args.blockSize, maxSequences: n });
  const seqs = Array.from({ length: n }, () => b.open(args.context + args.decode + 1));
  let ids = await b.step(seqs.map((seq, i) => ({ seq, tokens: prompt(i, args.context, model.config.vocabSize), sample: greedy })));
  // one warm-up decode step (first touch of this batch size's buffers), then the timed steps
  ids = await b.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.of(ids[i]), sample: greedy })));
  const steps = [];
  const t0 = performance.now();
  for (let k = 0; k < args.decode; k++) {
    const s0 = performance.now();
    ids = await b.step(seqs.map((seq, i) => ({ seq, tokens: Int32Array.of(ids[i]), sample: greedy })));
    steps.push(performance.now() - s0);
  }
  const ms = performance.now() - t0;
  for (const seq of seqs) b.close(seq);
  const free = b.freeBlocks() === b.totalBlocks;
  await b.dispose();
  const sorted = [...steps].sort((x, y) => x - y);
  return { streams: n, msPerStep: ms / args.decode, tokPerS: (n * args.decode * 1000) / ms, minStepMs: sorted[0], medianStepMs: sorted[sorted.length >> 1], poolBackToFull: free };
}

async function session(model, args) {
  const s = model.createSession({ maxContext: args.context + args.decode + 2 });
  await s.append(prompt(0, args.context, model.config.vocabSize));
  let id = await s.sample(greedy.options, 0.5);
  id = await s.stepSample(id, greedy.options, 0.5);
  const t0 = performance.now();
  for (let k = 0; k < args.decode; k++) id = await s.stepSample(id, greedy.options, 0.5);
  const ms = performance.now() - t0;
  await s.dispose();
  return { msPerStep: ms / args.decode, tokPerS: (args.decode * 1000) / ms };
}

const args = parseArgs(process.argv.slice(2));
const model = args.synthetic
  ? await createSyntheticModel(args.synthetic, { device: args.device, ...(args.layers ? { layers: args.layers } : {}) })
  : await loadModel(args.model, { device: args.device });
let commit = '';
try {
  commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
} catch {}
const loadBefore = loadavg();
console.log(`model ${args.synthetic ? `synthetic:${args.synthetic}` : args.model} (${model.config.numLayers} layers), ${model.info.backend}; context ${args.context}, ${args.decode} decode steps; load ${loadBefore.map((l) => l.toFixed(1)).join(' ')}`);
// --no-session: the batched runs alone (scripts/gpu-step-profile.sh profiles their kernels only)
const one = args.noSession ? null : await session(model, args);
if (one) console.log(`session (one stream, Session.stepSample): ${one.msPerStep.toFixed(1)} ms/token, ${one.tokPerS.toFixed(2)} tok/s`);
const rows = [];
for (const n of args.streams) {
  const r = await batched(model, n, args);
  rows.push({ ...r, vsSession: one ? r.tokPerS / one.tokPerS : null });
  const vs = one ? `, ${(r.tokPerS / one.tokPerS).toFixed(2)}x the session stream` : '';
  console.log(`batch ${String(n).padStart(2)} streams: ${r.msPerStep.toFixed(1)} ms/step (min ${r.minStepMs.toFixed(1)}, median ${r.medianStepMs.toFixed(1)}), ${r.tokPerS.toFixed(2)} tok/s aggregate${vs}; pool back to full: ${r.poolBackToFull}`);
}
const loadAfter = loadavg();
console.log(`load after ${loadAfter.map((l) => l.toFixed(1)).join(' ')}`);
mkdirSync(args.out, { recursive: true });
const file = join(args.out, `batch-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), host: hostname(), commit, backend: model.info.backend, model: args.synthetic ? `synthetic:${args.synthetic}` : args.model, layers: model.config.numLayers, context: args.context, decode: args.decode, blockSize: args.blockSize, load: { before: loadBefore, after: loadAfter }, session: one, batch: rows }, null, 2));
console.log(`-> ${file}`);
await model.dispose();
