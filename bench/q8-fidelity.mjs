#!/usr/bin/env node
// What the q8 activations mode costs in fidelity: one model loaded twice on the CPU (activations 'f32',
// the exact path, and 'q8'), the same prompt through both, logits compared: relative L2 over all
// positions, its median per position, and how often the argmax (the greedy token) agrees.
//   node bench/q8-fidelity.mjs <model-dir> [--tokens N]
//   node bench/q8-fidelity.mjs --synthetic 20b|tiny [--layers N] [--seed S] [--tokens N]
// Uses the built package (dist/); GPTOSS_CPU_ISA picks the kernel level.
import { loadModel } from '../dist/model.js';
import { createSyntheticModel } from '../dist/synthetic.js';

const argv = process.argv.slice(2);
const opt = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const synthetic = opt('--synthetic');
const n = Number(opt('--tokens') ?? 64);
const load = (activations) =>
  synthetic
    ? createSyntheticModel(synthetic, { device: 'cpu', activations, seed: opt('--seed') && Number(opt('--seed')), layers: opt('--layers') && Number(opt('--layers')) })
    : loadModel(argv[0], { device: 'cpu', activations });

const rel = (a, b) => {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

const logits = {};
let config, backend;
for (const mode of ['f32', 'q8']) {
  const model = await load(mode);
  config = model.config;
  backend = model.info.backend;
  const V = config.vocabSize;
  const tokens = Array.from({ length: n }, (_, i) => (i * 7919 + 104729) % Math.min(V, 199998));
  logits[mode] = await model.forward(tokens);
  await model.dispose();
}
const V = config.vocabSize;
const perRow = [];
let agree = 0;
for (let t = 0; t < n; t++) {
  const a = logits.q8.subarray(t * V, (t + 1) * V), b = logits.f32.subarray(t * V, (t + 1) * V);
  perRow.push(rel(a, b));
  if (argmax(a) === argmax(b)) agree++;
}
perRow.sort((x, y) => x - y);
const name = synthetic ? `synthetic ${synthetic}${opt('--layers') ? ` (${config.numLayers} layers)` : ''}` : argv[0];
console.log(`${name}: ${config.numLayers} layers, hidden ${config.hiddenSize}, ${config.numExperts} experts top-${config.expertsPerToken}; ${n} tokens; ${backend}`);
console.log(`  q8 vs f32 logits: rel L2 ${rel(logits.q8, logits.f32).toExponential(2)}, per position median ${perRow[n >> 1].toExponential(2)} (max ${perRow[n - 1].toExponential(2)}), argmax agreement ${agree}/${n} (${((100 * agree) / n).toFixed(0)}%)`);
