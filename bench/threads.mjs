#!/usr/bin/env node
// Thread scaling of the CPU backend, A/B in one process: the model is loaded once and the thread pool
// switched between configurations (ops.setThreads / setPoolAdaptive) round after round, so every
// configuration sees the same minutes of a shared machine's load. Per round and configuration: decode
// of --decode tokens after a prompt of --context tokens, and prefill of --prefill tokens from empty.
//
//   node bench/threads.mjs <model dir or .gguf> [--configs 1,2,2fixed,all,allfixed] [--rounds 5]
//        [--context 256] [--decode 8] [--prefill 32] [--activations f32|q8] [--out bench/results]
//
// Configurations: N = N threads with the adaptive choice (default), Nfixed = N threads always fork-join,
// all = every CPU of the affinity mask. The adaptive scores persist across rounds (per pool size), as in
// a long-running process. Reports per configuration the median wall-clock tok/s, the
// median CPU seconds a token (process CPU time: all threads) and the load average, and writes JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadModel } from '../dist/model.js';
import { cpuInfo, setPoolAdaptive, setThreads } from '../dist/ops.js';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const model = argv.find((a, i) => !a.startsWith('--') && (i === 0 || !argv[i - 1].startsWith('--')));
if (!model) {
  console.error('usage: node bench/threads.mjs <model dir or .gguf> [--configs 1,2,2fixed] [--rounds 5] [--context 256] [--decode 8] [--prefill 32] [--activations f32|q8]');
  process.exit(2);
}
const rounds = Number(opt('--rounds', '5'));
const context = Number(opt('--context', '256'));
const decodeN = Number(opt('--decode', '8'));
const prefillN = Number(opt('--prefill', '32'));
const all = availableParallelism();
const configs = opt('--configs', `1,2,2fixed${all > 2 ? ',all,allfixed' : ''}`).split(',').map((c) => {
  const m = c.match(/^(\d+|all)(fixed)?$/);
  if (!m) throw new Error(`bad config ${c}: N, Nfixed, all or allfixed`);
  return { name: c, threads: m[1] === 'all' ? all : Number(m[1]), adaptive: !m[2] };
});

const cpuS = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const tokens = (n, seed) => Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729) % 199998);

const m = await loadModel(model, { device: 'cpu', activations: opt('--activations') });
const vocab = m.config.vocabSize;
const tok = (n, seed) => tokens(n, seed).map((t) => t % Math.min(vocab, 199998));
// One decode session with the prompt in place; each round decodes on from where the last stopped
// (positions grow by rounds x configs x decode: a few dozen over --context).
const session = m.createSession({ maxContext: context + rounds * configs.length * (decodeN + 2) + 8 });
await session.append(tok(context, 4));
let token = await session.sample({ temperature: 0 }, 0.5);
const pre = m.createSession({ maxContext: prefillN + 1 });
await pre.append(tok(8, 2)); // first touch
const samples = Object.fromEntries(configs.map((c) => [c.name, []]));
for (let r = 0; r < rounds; r++) {
  for (const c of configs) {
    setThreads(c.threads);
    setPoolAdaptive(c.adaptive);
    token = await session.stepSample(token, { temperature: 0 }, 0.5); // warm the pool's choices
    const load = loadavg()[0];
    let c0 = cpuS(), t0 = performance.now();
    const ids = await session.stepSampleMany(token, { temperature: 0 }, new Array(decodeN).fill(0.5));
    token = ids[ids.length - 1];
    const decode = { ms: performance.now() - t0, cpuS: cpuS() - c0 };
    await pre.reset();
    c0 = cpuS();
    t0 = performance.now();
    await pre.append(tok(prefillN, 3 + r));
    const prefill = { ms: performance.now() - t0, cpuS: cpuS() - c0 };
    samples[c.name].push({ load, decode, prefill, jobs: cpuInfo().poolJobs });
  }
}
await session.dispose();
await pre.dispose();
await m.dispose();

const summary = { date: new Date().toISOString(), host: hostname(), model, cpus: all, isa: cpuInfo().isa, activations: m.info.activations, context, decode: decodeN, prefill: prefillN, rounds, configs: {} };
console.log(`${model}: ${m.info.activations} activations, isa ${summary.isa}, ${all} CPUs; median of ${rounds} rounds (configurations interleaved)`);
for (const c of configs) {
  const s = samples[c.name];
  const row = {
    threads: c.threads, adaptive: c.adaptive,
    decodeTokPerS: median(s.map((x) => (decodeN * 1000) / x.decode.ms)),
    decodeCpuMsPerToken: median(s.map((x) => (x.decode.cpuS * 1000) / decodeN)),
    prefillTokPerS: median(s.map((x) => (prefillN * 1000) / x.prefill.ms)),
    prefillCpuMsPerToken: median(s.map((x) => (x.prefill.cpuS * 1000) / prefillN)),
    loadAvg: [Math.min(...s.map((x) => x.load)), Math.max(...s.map((x) => x.load))],
    samples: s,
  };
  summary.configs[c.name] = row;
  console.log(`  ${c.name.padEnd(9)} decode ${row.decodeTokPerS.toFixed(2)} tok/s (${row.decodeCpuMsPerToken.toFixed(0)} CPU-ms/token), prefill ${prefillN} ${row.prefillTokPerS.toFixed(1)} tok/s (${row.prefillCpuMsPerToken.toFixed(0)} CPU-ms/token), load ${row.loadAvg.map((l) => l.toFixed(1)).join('-')}`);
}
const out = opt('--out', 'bench/results');
mkdirSync(out, { recursive: true });
const file = join(out, `${summary.date.slice(0, 16).replace(':', '')}-threads${opt('--label') ? '-' + opt('--label') : ''}.json`);
writeFileSync(file, JSON.stringify(summary, null, 2));
console.log(`  wrote ${file}`);
