#!/usr/bin/env node
// What a 16-bit KV cache costs in fidelity (issue 12 item 6), measured on the CPU: the CPU backend's
// f32 cache as stored (exact), then with every stored K/V value rounded to f16 and to bf16
// (GPTOSS_CPU_KV_ROUND, read once per process: one child process per mode; also K alone and V alone,
// to see which of the two the error comes from). The GPU's attention
// kernels read their 16-bit cache into f32 (gpu_check: within ~1e-5 of the CPU on the same cache
// contents), so these are the logit errors a CUDA model with kvCache 'f16' / 'bf16' adds over 'f32'.
// Checkpoints: tiny-a (also against its float32 transformers logits) and deeper random ones written by
// scripts/make-checkpoint.mjs (more layers and experts, top-4, window 24, larger scores and logits),
// an 80-token prompt each (tiny-a: its own 48 tokens).
//   node bench/kv-fidelity.mjs [--out bench/results] [--dir /tmp/gptoss-kv-checkpoints]
// Uses the built package (dist/).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import { KV_CHECKPOINTS, cpuLogits, kvCheckpoint, kvPrompt } from '../scripts/kv-checkpoints.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const root = new URL('..', import.meta.url).pathname;



const relL2 = (a, b) => {
  let n = 0, d = 0;
  for (let i = 0; i < b.length; i++) { n += (a[i] - b[i]) ** 2; d += b[i] ** 2; }
  return Math.sqrt(n / d);
};
const argmaxAgree = (a, b, V) => {
  let same = 0;
  for (let t = 0; t < b.length / V; t++) {
    let ia = 0, ib = 0;
    for (let i = 1; i < V; i++) { if (a[t * V + i] > a[t * V + ia]) ia = i; if (b[t * V + i] > b[t * V + ib]) ib = i; }
    same += ia === ib;
  }
  return same;
};
const logitsOf = (dir, tokens, vocab, round) => cpuLogits(dir, tokens, vocab, round);

const ckRoot = arg('--dir', join(tmpdir(), 'gptoss-kv-checkpoints'));
const outDir = arg('--out', join(root, 'bench', 'results'));
const cases = [];
{
  const dir = join(root, 'test', 'fixtures', 'tiny-a');
  const tokens = JSON.parse(readFileSync(join(dir, 'tokens.json'), 'utf8'));
  const refBuf = readFileSync(join(dir, 'logits.f32'));
  cases.push({ name: 'tiny-a', dir, tokens, vocab: 1024, transformers: new Float32Array(refBuf.buffer, refBuf.byteOffset, refBuf.byteLength / 4) });
}
for (const c of KV_CHECKPOINTS) {
  const dir = kvCheckpoint(ckRoot, c);
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const tokens = kvPrompt(cfg.vocab_size);
  cases.push({ name: c.name, dir, tokens, vocab: cfg.vocab_size, args: c.args.join(' ') });
}

// Per position: the rel L2 of each row of logits (a routing flip shows as a few large rows).
const perPosition = (a, b, V) => Array.from({ length: b.length / V }, (_, t) => relL2(a.subarray(t * V, (t + 1) * V), b.subarray(t * V, (t + 1) * V)));
const quantile = (xs, q) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
// f16-k: only K rounded (which of the two the error comes from); f32k-f16v: only V (the kvCache type
// that keeps K exact; the earlier tables called it f16-v).
const MODES = [null, 'f16', 'bf16', 'f16-k', 'f32k-f16v'];
const rows = [];
console.log('| checkpoint | cache values | rel L2 vs f32 cache | per position: median / max | argmax equal | vs transformers f32 |\n|---|---|---|---|---|---|');
for (const c of cases) {
  const exact = logitsOf(c.dir, c.tokens, c.vocab, null);
  for (const round of MODES) {
    const got = round ? logitsOf(c.dir, c.tokens, c.vocab, round) : exact;
    const per = perPosition(got, exact, c.vocab);
    const row = {
      checkpoint: c.name, kv: round ?? 'f32', relL2VsF32: relL2(got, exact), perPositionMedian: quantile(per, 0.5), perPositionMax: quantile(per, 1),
      argmaxEqual: argmaxAgree(got, exact, c.vocab), positions: c.tokens.length,
      ...(c.transformers ? { relL2VsTransformers: relL2(got, c.transformers) } : {}),
    };
    rows.push(row);
    console.log(`| ${c.name} | ${row.kv} | ${row.relL2VsF32.toExponential(2)} | ${row.perPositionMedian.toExponential(1)} / ${row.perPositionMax.toExponential(1)} | ${row.argmaxEqual}/${row.positions} | ${row.relL2VsTransformers !== undefined ? row.relL2VsTransformers.toExponential(2) : '-'} |`);
  }
}
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `kv-fidelity-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), host: hostname(), load: loadavg(), checkpoints: cases.map(({ name, args }) => ({ name, args })), rows }, null, 2));
console.log(`wrote ${file}`);
