#!/usr/bin/env node
// End-to-end benchmark: load time, resident memory, prefill and decode tokens/s on a model directory,
// or on synthetic weights of a preset shape (random, generated in memory: for shapes whose checkpoint
// does not fit the host, e.g. gpt-oss-120b; their speed is the real model's, their output is noise).
//   node bench/e2e.mjs <model-dir> [--device cpu|cuda|auto] [--prefill 128,512] [--decode 32] [--context 512]
//                      [--per-token] [--activations f32|q8] [--kv-cache f16|bf16|f32|f32k-f16v] [--label NAME] [--out bench/results]
//   <model-dir> may be a GGUF file; --dense-weights q8: attention and LM head quantized to Q8_0 at load;
//   --experts bf16: experts run as bf16 (a fine-tuned checkpoint as stored; a synthetic model's MXFP4
//   experts dequantized exactly), on CUDA by the bf16 expert kernels.
//   node bench/e2e.mjs --synthetic 20b|120b|tiny [--seed N] [--layers N] [same options]
//   --repeat N: each --prefill length timed N times (fresh session each); the figure is the median, every run kept (runsMs).
// Uses the built package (dist/). Decode = one token a step, sampled greedily on the device, nothing but
// the token id copied back, 16 steps a native call as generate() runs them (--per-token: one call a
// step); the prompt before the decode steps is `--context` tokens long. --activations: the CPU expert
// kernels' mode (LoadOptions.activations; default GPTOSS_CPU_ACTIVATIONS, else f32); GPTOSS_CPU_ISA
// picks the CPU kernel level. Generating
// synthetic weights is timed on its own (generateMs), not as load time.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
// dist/model.js, not the package index: this runs on hosts that carry no tokenizer data.
import { loadModel } from '../dist/model.js';
import { createSyntheticModel } from '../dist/synthetic.js';
import { readBandwidth } from '../dist/ops.js';
import { decodeBytesPerToken } from './decode-bytes.mjs';

function parseArgs(argv) {
  const args = { device: 'auto', prefill: [128], decode: 32, context: 512, label: '', out: 'bench/results', synthetic: null, seed: undefined, layers: undefined, perToken: false, activations: undefined, kvCache: undefined, denseWeights: 'as-stored', experts: undefined, repeat: 1, temperature: 0 };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--device') args.device = argv[++i];
    else if (a === '--prefill') {
      // comma-separated lengths; 0 (or '') times no prefill (the decode-only runs of scripts/gpu-draws-ab.sh)
      args.prefill = argv[++i].split(',').filter(Boolean).map(Number);
      if (args.prefill.some((n) => !Number.isInteger(n) || n < 0)) throw new Error(`--prefill: '${argv[i]}' is not a list of token counts`);
      args.prefill = args.prefill.filter((n) => n > 0);
    }
    else if (a === '--decode') args.decode = Number(argv[++i]);
    else if (a === '--per-token') args.perToken = true;
    else if (a === '--dense-weights') args.denseWeights = argv[++i];
    else if (a === '--experts') args.experts = argv[++i];
    else if (a === '--context') args.context = Number(argv[++i]);
    else if (a === '--label') args.label = argv[++i];
    else if (a === '--activations') args.activations = argv[++i];
    else if (a === '--kv-cache') args.kvCache = argv[++i];
    else if (a === '--out') args.out = argv[++i];
    else if (a === '--synthetic') args.synthetic = argv[++i];
    else if (a === '--seed') args.seed = Number(argv[++i]);
    else if (a === '--layers') args.layers = Number(argv[++i]);
    else if (a === '--repeat') args.repeat = Number(argv[++i]);
    else if (a === '--temperature') args.temperature = Number(argv[++i]);
    else rest.push(a);
  }
  const synthetic = args.synthetic !== null;
  if (!Number.isFinite(args.temperature) || args.temperature < 0) {
    console.error(`bench/e2e.mjs: --temperature must be a finite number >= 0 (got ${args.temperature})`);
    process.exit(2);
  }
  if (!Number.isInteger(args.repeat) || args.repeat < 1) {
    console.error(`bench/e2e.mjs: --repeat must be a positive integer (got ${args.repeat})`);
    process.exit(2);
  }
  if (rest.length !== (synthetic ? 0 : 1) || (!synthetic && (args.seed !== undefined || args.layers !== undefined))) {
    console.error(
      'usage: node bench/e2e.mjs <model-dir> [--device cpu|cuda|auto] [--prefill 128,512] [--decode 32] [--context 512] [--per-token] [--temperature T] [--label NAME] [--out DIR]\n' +
        '       node bench/e2e.mjs --synthetic 20b|120b|tiny [--seed N] [--layers N] [same options]',
    );
    process.exit(2);
  }
  args.model = synthetic ? `synthetic:${args.synthetic}` : rest[0];
  return args;
}

// Resident memory split the way /proc reports it: anonymous (our copies) vs file-backed (the mapping).
function memory() {
  try {
    const s = readFileSync('/proc/self/status', 'utf8');
    const kb = (k) => Number((s.match(new RegExp(`${k}:\\s+(\\d+)`)) || [0, 0])[1]) * 1024;
    return { rss: kb('VmRSS'), rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
  } catch {
    return { rss: process.memoryUsage().rss };
  }
}

const tokensFor = (n, vocab, seed = 1) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % Math.min(vocab, 199998));
const gib = (b) => (b / 2 ** 30).toFixed(2);

const args = parseArgs(process.argv.slice(2));
const loadAvgStart = loadavg()[0];
const t0 = performance.now(), loadCpu0 = process.cpuUsage();
const model = args.synthetic
  ? await createSyntheticModel(args.synthetic, { device: args.device, seed: args.seed, layers: args.layers, activations: args.activations, kvCache: args.kvCache, denseWeights: args.denseWeights, experts: args.experts })
  : await loadModel(args.model, { device: args.device, activations: args.activations, kvCache: args.kvCache, denseWeights: args.denseWeights, experts: args.experts });
const setupMs = performance.now() - t0;
const loadCpu = process.cpuUsage(loadCpu0);
const isSynthetic = model.info.source === 'synthetic';
const afterLoad = memory();
const V = model.config.vocabSize;
const result = {
  date: new Date().toISOString(),
  host: hostname(),
  label: args.label,
  model: args.model,
  // 'checkpoint': weights read from the model dir; 'synthetic': random weights generated in memory
  source: model.info.source,
  ...(isSynthetic ? { synthetic: { preset: args.synthetic, seed: model.info.seed, layers: model.config.numLayers } } : {}),
  device: model.info.device,
  backend: model.info.backend,
  activations: model.info.activations,
  kvCache: model.info.kvCache,
  config: { layers: model.config.numLayers, experts: model.config.numExperts, hidden: model.config.hiddenSize, vocab: V },
  bytesOnDisk: model.info.bytesOnDisk,
  weightBytes: model.info.weightBytes,
  format: model.info.format,
  denseWeights: args.denseWeights,
  experts: args.experts ?? 'mxfp4',
  groups: model.info.groups,
  conversions: model.info.conversions,
  convertSeconds: model.info.convertSeconds,
  // Load time is a checkpoint's; generating synthetic weights is not loading them (generateMs).
  loadMs: isSynthetic ? null : setupMs,
  // the process's CPU time (every thread) while loading: quantizing at load and page faults included
  loadCpuMs: isSynthetic ? null : (loadCpu.user + loadCpu.system) / 1e3,
  ...(isSynthetic ? { generateMs: setupMs } : {}),
  memoryAfterLoad: afterLoad,
  prefill: [],
  decode: null,
};

// First token after load (includes first-touch page faults of the mapping on the CPU).
{
  const s = model.createSession({ maxContext: 8 });
  const t = performance.now();
  await s.prefill(tokensFor(1, V));
  result.firstTokenMs = performance.now() - t;
  result.loadToFirstTokenMs = isSynthetic ? null : setupMs + result.firstTokenMs;
  await s.dispose();
}

for (const n of args.prefill) {
  const runsMs = [];
  for (let r = 0; r < args.repeat; r++) {
    const s = model.createSession({ maxContext: n + 1 });
    await s.prefill(tokensFor(Math.min(n, 16), V, 2)); // warm-up
    await s.reset();
    const t = performance.now();
    await s.append(tokensFor(n, V, 3));
    runsMs.push(performance.now() - t);
    await s.dispose();
  }
  const ms = runsMs.slice().sort((a, b) => a - b)[runsMs.length >> 1];
  result.prefill.push({ tokens: n, ms, tokensPerSecond: (n * 1000) / ms, ...(args.repeat > 1 ? { runsMs } : {}) });
}

if (args.decode > 0) {
  const s = model.createSession({ maxContext: args.context + args.decode + 4 });
  await s.append(tokensFor(args.context, V, 4));
  // --temperature T: the decode steps draw at T (generate()'s default is 1: no ranking, every logit's
  // probability summed) instead of the greedy argmax; the uniforms come from a fixed sequence.
  const params = { temperature: args.temperature };
  let draw = 1;
  const u = () => (draw = (draw * 48271) % 2147483647) / 2147483647;  // Park-Miller: (0, 1)
  let token = await s.sample(params, u());
  // Two warm-up steps (graph capture on CUDA), then the timed steps.
  for (let i = 0; i < 2; i++) {
    token = await s.stepSample(token, params, u());
  }
  // As generate() decodes: chunks of 16 steps a native call (stepSampleMany: each step queued on the
  // device before the previous id is read back); --per-token: one stepSample call a token.
  const t = performance.now(), cpu0 = process.cpuUsage();
  if (args.perToken) {
    for (let i = 0; i < args.decode; i++) token = await s.stepSample(token, params, u());
  } else {
    for (let done = 0; done < args.decode; ) {
      const count = Math.min(16, args.decode - done);
      const ids = await s.stepSampleMany(token, params, Array.from({ length: count }, u));
      token = ids[ids.length - 1];
      done += ids.length;
    }
  }
  const ms = performance.now() - t, cpu = process.cpuUsage(cpu0);
  result.decode = {
    context: args.context, tokens: args.decode, temperature: args.temperature, ms, tokensPerSecond: (args.decode * 1000) / ms, msPerToken: ms / args.decode,
    // the process's CPU time (every thread) a token: what a step costs whatever share of the cores it got
    cpuMsPerToken: (cpu.user + cpu.system) / 1e3 / args.decode,
    calls: args.perToken ? 'stepSample (one a token)' : 'stepSampleMany (16 steps a call)',
  };
  await s.dispose();
}
result.memoryEnd = memory();
result.loadAvg = [loadAvgStart, loadavg()[0]];
if (result.device === 'cpu') {
  // The CPU roofline: every active weight byte read once per decoded token, at the read bandwidth
  // measured now (same load on the machine as the decode above).
  const bytesPerToken = decodeBytesPerToken(model);
  const gbps = readBandwidth(1024, 3);
  result.roofline = { bytesPerToken, readBandwidthGBs: gbps, tokensPerSecond: (gbps * 1e9) / bytesPerToken };
}
await model.dispose();

if (isSynthetic) {
  console.log(`model synthetic ${args.synthetic} (random weights, seed ${model.info.seed}, ${model.config.numLayers} layers) on ${result.backend}, ${result.activations} activations, ${result.kvCache} KV cache`);
  console.log(`  generated ${gib(result.weightBytes)} GiB of weights in ${result.generateMs.toFixed(0)} ms (not load time), first token ${result.firstTokenMs.toFixed(0)} ms`);
} else {
  console.log(`model ${args.model} on ${result.backend}, ${result.activations} activations, ${result.kvCache} KV cache`);
  console.log(`  load ${result.loadMs.toFixed(0)} ms (${result.loadCpuMs.toFixed(0)} CPU-ms), load to first token ${result.loadToFirstTokenMs.toFixed(0)} ms, disk ${gib(result.bytesOnDisk)} GiB`);
}
console.log(`  resident after load ${gib(afterLoad.rss)} GiB (anon ${gib(afterLoad.rssAnon ?? 0)}, file ${gib(afterLoad.rssFile ?? 0)}); at end ${gib(result.memoryEnd.rss)} GiB (anon ${gib(result.memoryEnd.rssAnon ?? 0)})`);
for (const p of result.prefill) console.log(`  prefill ${p.tokens} tokens: ${p.tokensPerSecond.toFixed(1)} tok/s (${p.ms.toFixed(1)} ms${p.runsMs ? `, median of ${p.runsMs.map((x) => x.toFixed(1)).join(' ')}` : ''})`);
if (result.decode) console.log(`  decode at context ${result.decode.context}: ${result.decode.tokensPerSecond.toFixed(2)} tok/s (${result.decode.msPerToken.toFixed(1)} ms/token, ${result.decode.cpuMsPerToken.toFixed(1)} CPU-ms/token over ${result.decode.tokens}); load avg ${result.loadAvg.map((x) => x.toFixed(1)).join(' -> ')}`);

if (result.roofline && result.decode) {
  const r = result.roofline;
  console.log(`  roofline: ${(r.bytesPerToken / 1e9).toFixed(2)} GB/token at ${r.readBandwidthGBs.toFixed(1)} GB/s read = ${r.tokensPerSecond.toFixed(2)} tok/s; decode at ${((100 * result.decode.tokensPerSecond) / r.tokensPerSecond).toFixed(0)}% of it`);
}
mkdirSync(args.out, { recursive: true });
const file = join(args.out, `${result.date.slice(0, 10)}-${result.device.replace(':', '')}-${args.label || (isSynthetic ? `synthetic-${args.synthetic}` : 'e2e')}.json`);
writeFileSync(file, JSON.stringify(result, null, 2));
console.log(`  wrote ${file}`);
