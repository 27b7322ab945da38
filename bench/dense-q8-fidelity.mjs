#!/usr/bin/env node
// Fidelity of loadModel(dir, { denseWeights: 'q8' }) against the checkpoint's own bf16 dense weights:
// relative L2 of the logits over a prompt and the share of positions whose argmax agrees, on the CPU.
//   node bench/dense-q8-fidelity.mjs <checkpoint-dir> [more dirs...] [--tokens 256]
// A model directory may also be a GGUF file (compared with --against <dir>: its safetensors form).
// Prints one JSON line per model. Uses the built package (dist/).
import { loadModel } from '../dist/model.js';

const argv = process.argv.slice(2);
let n = 256;
const dirs = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--tokens') n = Number(argv[++i]);
  else dirs.push(argv[i]);
}
if (!dirs.length) {
  console.error('usage: node bench/dense-q8-fidelity.mjs <checkpoint-dir>... [--tokens 256]');
  process.exit(2);
}

function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
function argmaxRows(v, cols) {
  const out = [];
  for (let r = 0; r < v.length / cols; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (v[r * cols + c] > v[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

for (const dir of dirs) {
  const base = await loadModel(dir, { device: 'cpu' });
  const V = base.config.vocabSize;
  // A deterministic pseudo-text prompt over the vocabulary (no tokenizer needed).
  const tokens = Array.from({ length: n }, (_, i) => (i * 7919 + 104729) % Math.min(V, 199998));
  const ref = await base.forward(tokens);
  await base.dispose();
  const q8 = await loadModel(dir, { device: 'cpu', denseWeights: 'q8' });
  const got = await q8.forward(tokens);
  const a = argmaxRows(got, V), b = argmaxRows(ref, V);
  const agree = a.filter((x, i) => x === b[i]).length / a.length;
  console.log(JSON.stringify({
    model: dir,
    layers: q8.config.numLayers,
    hidden: q8.config.hiddenSize,
    tokens: n,
    relL2: relL2(got, ref),
    argmaxAgreement: agree,
    convertSeconds: q8.info.convertSeconds,
    conversions: q8.info.conversions,
  }));
  await q8.dispose();
}
