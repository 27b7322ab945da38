#!/usr/bin/env node
// Load generator for the serving engine (model.createEngine): N concurrent streams, each a prompt of
// --prompt random token ids and --tokens generated tokens (stop tokens off, so every stream produces
// exactly that many). Reports aggregate output tok/s (all output tokens / wall time from the first
// request to the last token), time to first token and inter-token latency p50/p99 (per token, over
// every stream), and peak resident memory (VmHWM; on CUDA also the device's used memory at the end).
// For comparison it first runs generate() alone on the same model (one stream, same shape).
//   node bench/serve-load.mjs --synthetic 20b [--layers 4] [--streams 1,8] [--prompt 64] [--tokens 32]
//                             [--max-batch-tokens 512] [--device cpu] [--backend native|session] [--label NAME] [--out bench/results]
//   node bench/serve-load.mjs <model-dir> [same options]
// Uses the built package (dist/). Token ids, not text: the synthetic models carry no meaning.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execSync } from 'node:child_process';
import { loadModel } from '../dist/model.js';
import { createSyntheticModel } from '../dist/synthetic.js';
import { generate } from '../dist/generate.js';

function parseArgs(argv) {
  const a = { device: 'cpu', streams: [1, 8], prompt: 64, tokens: 32, maxBatchTokens: 512, backend: undefined, label: '', out: 'bench/results', synthetic: null, layers: undefined, model: null };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--device') a.device = argv[++i];
    else if (x === '--streams') a.streams = argv[++i].split(',').map(Number);
    else if (x === '--prompt') a.prompt = Number(argv[++i]);
    else if (x === '--tokens') a.tokens = Number(argv[++i]);
    else if (x === '--max-batch-tokens') a.maxBatchTokens = Number(argv[++i]);
    else if (x === '--label') a.label = argv[++i];
    else if (x === '--backend') a.backend = argv[++i];
    else if (x === '--out') a.out = argv[++i];
    else if (x === '--synthetic') a.synthetic = argv[++i];
    else if (x === '--layers') a.layers = Number(argv[++i]);
    else if (a.model === null && !x.startsWith('--')) a.model = x;
    else throw new Error(`serve-load: unknown argument ${x}`);
  }
  if ((a.model === null) === (a.synthetic === null)) throw new Error('serve-load: give a model folder or --synthetic PRESET');
  return a;
}

const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
function peakRss() {
  const s = readFileSync('/proc/self/status', 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(s)[1]) * 1024;
}
function gpuUsed() {
  try {
    return Number(execSync('nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]) * 2 ** 20;
  } catch {
    return null;
  }
}

function prompts(n, len, vocab, seed) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % vocab);
  return Array.from({ length: n }, () => Array.from({ length: len }, next));
}

async function runEngine(model, streams, args) {
  const engine = model.createEngine({ ...(args.backend ? { backend: args.backend } : {}), maxSequences: streams, maxBatchTokens: Math.max(args.maxBatchTokens, streams), maxContext: args.prompt + args.tokens + 1 });
  const ps = prompts(streams, args.prompt, Math.min(model.config.vocabSize, 199998), 1000 + streams);
  const ttft = [];
  const itl = [];
  let total = 0;
  const t0 = performance.now();
  let tEnd = t0;
  await Promise.all(
    ps.map(async (p, i) => {
      const start = performance.now();
      let last = 0;
      const stream = engine.generate(p, { maxTokens: args.tokens, temperature: 1, seed: i, stopTokens: [] });
      for await (const e of stream) {
        if (e.type !== 'token') continue;
        const t = performance.now();
        if (last === 0) ttft.push(t - start);
        else itl.push(t - last);
        last = t;
        total++;
        tEnd = Math.max(tEnd, t);
      }
      const r = await stream.result;
      if (r.finishReason === 'error') throw r.error;
    }),
  );
  const steps = engine.stats().steps;
  await engine.close();
  const wall = (tEnd - t0) / 1000;
  return {
    streams,
    outputTokens: total,
    wallS: round(wall, 3),
    aggregateTokS: round(total / wall),
    ttftMs: { p50: round(pct(ttft, 50)), p99: round(pct(ttft, 99)) },
    itlMs: { p50: round(pct(itl, 50)), p99: round(pct(itl, 99)) },
    steps,
    backend: engine.backend.constructor.name,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const load0 = loadavg()[0];
  const model = args.synthetic
    ? await createSyntheticModel(args.synthetic, { device: args.device, ...(args.layers ? { layers: args.layers } : {}) })
    : await loadModel(args.model, { device: args.device });
  const shape = `${args.synthetic ?? args.model}${args.layers ? `, ${args.layers} layers` : ''}`;
  console.error(`serve-load: ${shape} on ${model.device} (${model.info.backend}); prompt ${args.prompt}, ${args.tokens} tokens a stream; load ${load0.toFixed(2)}`);

  // generate() alone: the one-stream reference
  const [p] = prompts(1, args.prompt, Math.min(model.config.vocabSize, 199998), 7);
  await generate(model, p, { maxTokens: 4, temperature: 1, seed: 1, stopTokens: [] }).result; // warm-up
  const g = await generate(model, p, { maxTokens: args.tokens, temperature: 1, seed: 1, stopTokens: [] }).result;
  const reference = { decodeTokS: round(g.timings.tokensPerSecond), prefillMs: round(g.timings.prefillMs) };
  console.error(`generate(): decode ${reference.decodeTokS} tok/s, prefill ${reference.prefillMs} ms`);

  const runs = [];
  for (const n of args.streams) {
    const r = await runEngine(model, n, args);
    console.error(`${n} streams: ${r.aggregateTokS} tok/s aggregate; TTFT p50 ${r.ttftMs.p50} p99 ${r.ttftMs.p99} ms; ITL p50 ${r.itlMs.p50} p99 ${r.itlMs.p99} ms; ${r.steps} steps`);
    runs.push(r);
  }
  const result = {
    date: new Date().toISOString(),
    host: hostname(),
    cpu: cpus()[0]?.model,
    commit: (() => {
      try {
        return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
      } catch {
        return null;
      }
    })(),
    command: `node bench/serve-load.mjs ${process.argv.slice(2).join(' ')}`,
    shape,
    device: model.device,
    backend: runs[0]?.backend,
    loadavg: { start: round(load0), end: round(loadavg()[0]) },
    generate: reference,
    runs,
    peakRssBytes: peakRss(),
    gpuUsedBytes: gpuUsed(),
  };
  await model.dispose();
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, `serve-load-${args.label || args.synthetic || 'model'}-${result.date.slice(0, 19).replace(/[:T]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  console.error(`serve-load: wrote ${file}`);
}

main().catch((e) => {
  console.error(`serve-load: ${e instanceof Error ? e.stack : e}`);
  process.exit(1);
});
